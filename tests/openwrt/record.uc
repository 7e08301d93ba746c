// record.uc DIR: what the init script told procd, one line per fact, from
// the ubus stand-in's record in DIR (calls: "N ubus call OBJECT METHOD" and
// "log PRIO TAG: MESSAGE" lines; N.json: the JSON argument of call N). The
// lines are the ones tests/openwrt/run.sh checks:
//   instance NAME / param KEY|VALUE|... / data firewall[ { k=v ... } ... ]
//   reload_trigger CONFIG / raw_trigger EVENT|TIMEOUT|COMMAND...
//   config_changed CONFIG / signal SERVICE|INSTANCE|SIGNAL / delete SERVICE
//   log PRIO TAG: MESSAGE (unchanged)
let fs = require("fs"), dir = ARGV[0];
let signals = { "1": "HUP", "9": "KILL", "15": "TERM" };
let str = (v) => (type(v) == "bool") ? (v ? "1" : "0") : ("" + v);
let calls = fs.readfile(dir + "/calls") ?? "";
for (let line in split(calls, "\n")) {
	if (line == "") continue;
	if (substr(line, 0, 4) == "log ") { print(line, "\n"); continue; }
	let f = split(line, " ");
	if (f[2] != "call") { print("ubus ", join(" ", slice(f, 2)), "\n"); continue; }
	let m = json(fs.readfile(dir + "/" + f[0] + ".json") ?? "null");
	let what = f[3] + " " + f[4];
	if (what == "service set") {
		for (let name, inst in m.instances) {
			print("instance ", name, "\n");
			for (let k, v in inst) {
				if (k == "data") {
					for (let dk, dv in v) {
						let s = "data " + dk + "[";
						for (let o in dv) {
							s += " {";
							for (let ok, ov in o) s += " " + ok + "=" + str(ov);
							s += " }";
						}
						print(s, " ]\n");
					}
				} else {
					print("param ", k, "|", join("|", map((type(v) == "array") ? v : [v], str)), "\n");
				}
			}
		}
		for (let t in m.triggers) {
			if (t[0] == "config.change" && t[1][0] == "if")
				print("reload_trigger ", t[1][1][2], "\n");
			else
				print("raw_trigger ", join("|", [t[0], str(t[2]), ...slice(t[1][0], 1)]), "\n");
		}
	} else if (what == "service event" && m.type == "config.change") {
		print("config_changed ", m.data.package, "\n");
	} else if (what == "service signal") {
		print("signal ", m.name, "|", m.instance ?? "", "|", signals[str(m.signal)] ?? str(m.signal), "\n");
	} else if (what == "service delete") {
		print("delete ", m.name, "\n");
	} else {
		print("ubus call ", what, " ", m, "\n");
	}
}
