/*
 * enosys: run a command as if on an older Linux kernel, by answering ENOSYS
 * to every x86_64 system call that kernel did not have yet.
 *
 *   enosys --floor 2.6.36 [--deny NR]... [--allow NR]... [--] COMMAND [ARG]...
 *                                                 run COMMAND under the filter,
 *                                                 --deny NR answering ENOSYS too,
 *                                                 --allow NR answering as usual
 *
 * --allow is for qemu-user, which makes a guest's old calls with newer host
 * ones (the guest's pipe with pipe2, its accept with accept4): allowing
 * those host calls lets an emulated program run on the floor at all, while
 * its other new calls (statx, getrandom, epoll_create1 ...) are refused.
 *   enosys --list 2.6.36                          print the calls it blocks
 *   enosys --call NR...                           make raw calls, print errnos
 *
 * The filter (seccomp-BPF, with no_new_privs) is inherited across fork and
 * execve, so COMMAND and all its children see the old kernel. For floors
 * below 3.0, uname(2) also reports a 2.6 kernel (the UNAME26 personality:
 * "2.6.<60 + minor>"), because programs read it to pick a code path: OpenSSL
 * falls back to /dev/urandom without getrandom only on kernels before 4.8. --call exists
 * so a test can prove the filter is there: `enosys --floor F -- enosys --call`.
 *
 * Flags an old kernel refuses inside a call it has are modelled too, from
 * the argument values (the `flags` table): SOCK_CLOEXEC and SOCK_NONBLOCK in
 * the type of socket and socketpair get EINVAL before 2.6.27, and fcntl's
 * F_DUPFD_CLOEXEC before 2.6.24. What it cannot show: flags an old kernel
 * silently ignores (O_CLOEXEC on open before 2.6.23 leaves the descriptor
 * open across exec), and other architectures' numbers and dates.
 *
 *   enosys --call NR:ARG... makes the call with those arguments and prints
 *   "NR:ARG... ok" or the errno's name, so a test can see a flag refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#define KV(a, b, c) (((a) << 16) | ((b) << 8) | (c))

/*
 * Every x86_64 call numbered 273 or more, with the first kernel release that
 * had it. Calls below 273 all predate 2.6.17, so floors below 2.6.16 are
 * refused. The test checks each name and number against <asm/unistd_64.h>
 * and that no call from that header is missing here.
 */
static const struct call {
	int nr;
	const char *name;
	int since;
} calls[] = {
	{273, "set_robust_list", KV(2, 6, 17)},
	{274, "get_robust_list", KV(2, 6, 17)},
	{275, "splice", KV(2, 6, 17)},
	{276, "tee", KV(2, 6, 17)},
	{277, "sync_file_range", KV(2, 6, 17)},
	{278, "vmsplice", KV(2, 6, 17)},
	{279, "move_pages", KV(2, 6, 18)},
	{280, "utimensat", KV(2, 6, 22)},
	{281, "epoll_pwait", KV(2, 6, 19)},
	{282, "signalfd", KV(2, 6, 22)},
	/* 2.6.22 had an incompatible timerfd() here, withdrawn in 2.6.23. */
	{283, "timerfd_create", KV(2, 6, 25)},
	{284, "eventfd", KV(2, 6, 22)},
	{285, "fallocate", KV(2, 6, 23)},
	{286, "timerfd_settime", KV(2, 6, 25)},
	{287, "timerfd_gettime", KV(2, 6, 25)},
	{288, "accept4", KV(2, 6, 28)},
	{289, "signalfd4", KV(2, 6, 27)},
	{290, "eventfd2", KV(2, 6, 27)},
	{291, "epoll_create1", KV(2, 6, 27)},
	{292, "dup3", KV(2, 6, 27)},
	{293, "pipe2", KV(2, 6, 27)},
	{294, "inotify_init1", KV(2, 6, 27)},
	{295, "preadv", KV(2, 6, 30)},
	{296, "pwritev", KV(2, 6, 30)},
	{297, "rt_tgsigqueueinfo", KV(2, 6, 31)},
	{298, "perf_event_open", KV(2, 6, 31)},
	{299, "recvmmsg", KV(2, 6, 33)},
	/* In the 2.6.36 table but answering ENOSYS until 2.6.37 enabled it. */
	{300, "fanotify_init", KV(2, 6, 37)},
	{301, "fanotify_mark", KV(2, 6, 37)},
	{302, "prlimit64", KV(2, 6, 36)},
	{303, "name_to_handle_at", KV(2, 6, 39)},
	{304, "open_by_handle_at", KV(2, 6, 39)},
	{305, "clock_adjtime", KV(2, 6, 39)},
	{306, "syncfs", KV(2, 6, 39)},
	{307, "sendmmsg", KV(3, 0, 0)},
	{308, "setns", KV(3, 0, 0)},
	/* Before 3.1 x86_64 had getcpu only as a vsyscall. */
	{309, "getcpu", KV(3, 1, 0)},
	{310, "process_vm_readv", KV(3, 2, 0)},
	{311, "process_vm_writev", KV(3, 2, 0)},
	{312, "kcmp", KV(3, 5, 0)},
	{313, "finit_module", KV(3, 8, 0)},
	{314, "sched_setattr", KV(3, 14, 0)},
	{315, "sched_getattr", KV(3, 14, 0)},
	{316, "renameat2", KV(3, 15, 0)},
	{317, "seccomp", KV(3, 17, 0)},
	{318, "getrandom", KV(3, 17, 0)},
	{319, "memfd_create", KV(3, 17, 0)},
	{320, "kexec_file_load", KV(3, 17, 0)},
	{321, "bpf", KV(3, 18, 0)},
	{322, "execveat", KV(3, 19, 0)},
	{323, "userfaultfd", KV(4, 3, 0)},
	{324, "membarrier", KV(4, 3, 0)},
	{325, "mlock2", KV(4, 4, 0)},
	{326, "copy_file_range", KV(4, 5, 0)},
	{327, "preadv2", KV(4, 6, 0)},
	{328, "pwritev2", KV(4, 6, 0)},
	{329, "pkey_mprotect", KV(4, 9, 0)},
	{330, "pkey_alloc", KV(4, 9, 0)},
	{331, "pkey_free", KV(4, 9, 0)},
	{332, "statx", KV(4, 11, 0)},
	{333, "io_pgetevents", KV(4, 18, 0)},
	{334, "rseq", KV(4, 18, 0)},
	{335, "uretprobe", KV(6, 11, 0)},
	/* 336-423 were never used on x86_64; the kernel answers ENOSYS. */
	{424, "pidfd_send_signal", KV(5, 1, 0)},
	{425, "io_uring_setup", KV(5, 1, 0)},
	{426, "io_uring_enter", KV(5, 1, 0)},
	{427, "io_uring_register", KV(5, 1, 0)},
	{428, "open_tree", KV(5, 2, 0)},
	{429, "move_mount", KV(5, 2, 0)},
	{430, "fsopen", KV(5, 2, 0)},
	{431, "fsconfig", KV(5, 2, 0)},
	{432, "fsmount", KV(5, 2, 0)},
	{433, "fspick", KV(5, 2, 0)},
	{434, "pidfd_open", KV(5, 3, 0)},
	{435, "clone3", KV(5, 3, 0)},
	{436, "close_range", KV(5, 9, 0)},
	{437, "openat2", KV(5, 6, 0)},
	{438, "pidfd_getfd", KV(5, 6, 0)},
	{439, "faccessat2", KV(5, 8, 0)},
	{440, "process_madvise", KV(5, 10, 0)},
	{441, "epoll_pwait2", KV(5, 11, 0)},
	{442, "mount_setattr", KV(5, 12, 0)},
	{443, "quotactl_fd", KV(5, 14, 0)},
	{444, "landlock_create_ruleset", KV(5, 13, 0)},
	{445, "landlock_add_rule", KV(5, 13, 0)},
	{446, "landlock_restrict_self", KV(5, 13, 0)},
	{447, "memfd_secret", KV(5, 14, 0)},
	{448, "process_mrelease", KV(5, 15, 0)},
	{449, "futex_waitv", KV(5, 16, 0)},
	{450, "set_mempolicy_home_node", KV(5, 17, 0)},
	{451, "cachestat", KV(6, 5, 0)},
	{452, "fchmodat2", KV(6, 6, 0)},
	{453, "map_shadow_stack", KV(6, 6, 0)},
	{454, "futex_wake", KV(6, 7, 0)},
	{455, "futex_wait", KV(6, 7, 0)},
	{456, "futex_requeue", KV(6, 7, 0)},
	{457, "statmount", KV(6, 8, 0)},
	{458, "listmount", KV(6, 8, 0)},
	{459, "lsm_get_self_attr", KV(6, 8, 0)},
	{460, "lsm_set_self_attr", KV(6, 8, 0)},
	{461, "lsm_list_modules", KV(6, 8, 0)},
	{462, "mseal", KV(6, 10, 0)},
	{463, "setxattrat", KV(6, 13, 0)},
	{464, "getxattrat", KV(6, 13, 0)},
	{465, "listxattrat", KV(6, 13, 0)},
	{466, "removexattrat", KV(6, 13, 0)},
	{467, "open_tree_attr", KV(6, 15, 0)},
	{468, "file_getattr", KV(6, 17, 0)},
	{469, "file_setattr", KV(6, 17, 0)},
};
#define NCALLS (sizeof(calls) / sizeof(calls[0]))

/*
 * Flags refused inside calls that are older than the table: before `since`,
 * argument `arg` of call `nr` gets EINVAL when it has a bit of `mask`
 * (`exact` 0) or equals `mask` (`exact` 1). Releases from the kernel's git
 * history: "flag parameters: socket and socketpair" (SOCK_CLOEXEC,
 * SOCK_NONBLOCK) is in 2.6.27, "F_DUPFD_CLOEXEC implementation" in 2.6.24.
 * accept4, epoll_create1, eventfd2 and pipe2 came with their flags: below
 * 2.6.27 the calls themselves answer ENOSYS (the table above).
 */
static const struct flag {
	int nr;
	const char *name;
	int arg;
	unsigned mask;
	int exact;
	int since;
} flags[] = {
	{__NR_socket, "socket SOCK_CLOEXEC|SOCK_NONBLOCK", 1, SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
	 KV(2, 6, 27)},
	{__NR_socketpair, "socketpair SOCK_CLOEXEC|SOCK_NONBLOCK", 1, SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
	 KV(2, 6, 27)},
	{__NR_fcntl, "fcntl F_DUPFD_CLOEXEC", 1, F_DUPFD_CLOEXEC, 1, KV(2, 6, 24)},
};
#define NFLAGS (sizeof(flags) / sizeof(flags[0]))
#define LAST_KNOWN 469

static int parse_version(const char *s)
{
	int a = 0, b = 0, c = 0;
	if (sscanf(s, "%d.%d.%d", &a, &b, &c) < 2 || a < 2 || b > 255 || c > 255) {
		fprintf(stderr, "enosys: %s: expected a version like 2.6.36\n", s);
		exit(2);
	}
	if (KV(a, b, c) < KV(2, 6, 16)) {
		fprintf(stderr, "enosys: %s: floors below 2.6.16 are not in the table\n", s);
		exit(2);
	}
	return KV(a, b, c);
}

static int blocked(const struct call *c, int floor)
{
	return c->since > floor;
}

/* Calls given with --deny, answering ENOSYS whatever the floor, and with
 * --allow, answering whatever the floor. */
static long denied[16];
static int ndenied;
static long allowed[16];
static int nallowed;

static void install(int floor)
{
	/* One jeq plus one ret per blocked call: BPF jumps reach only 255 ahead. */
	static struct sock_filter prog[8 + 2 * NCALLS + 5 * NFLAGS + 2 * 16 + 2 * 16];
	struct sock_filter *p = prog;
	struct sock_filter ret_enosys =
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));

	*p++ = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					    offsetof(struct seccomp_data, arch));
	/* Not x86_64 (an int 0x80 call from a 64-bit program): refuse. */
	*p++ = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	*p++ = ret_enosys;
	*p++ = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					    offsetof(struct seccomp_data, nr));
	/* x32 calls and anything newer than the table: refuse. */
	*p++ = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, LAST_KNOWN, 0, 1);
	*p++ = ret_enosys;
	for (int i = 0; i < ndenied; i++) {
		*p++ = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, denied[i], 0, 1);
		*p++ = ret_enosys;
	}
	for (int i = 0; i < nallowed; i++) {
		*p++ = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, allowed[i], 0, 1);
		*p++ = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	}
	struct sock_filter ret_einval =
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EINVAL & SECCOMP_RET_DATA));
	for (size_t i = 0; i < NFLAGS; i++) {
		const struct flag *f = &flags[i];
		if (f->since <= floor)
			continue;
		/* That call: refuse the flags, allow the rest. The low 32 bits
		 * of the argument (little-endian) hold an int's value. */
		*p++ = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, f->nr, 0, 4);
		*p++ = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
						    offsetof(struct seccomp_data, args) + 8 * f->arg);
		*p++ = (struct sock_filter)BPF_JUMP(BPF_JMP | (f->exact ? BPF_JEQ : BPF_JSET) | BPF_K,
						    f->mask, 0, 1);
		*p++ = ret_einval;
		*p++ = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	}
	for (size_t i = 0; i < NCALLS; i++) {
		if (!blocked(&calls[i], floor))
			continue;
		*p++ = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, calls[i].nr, 0, 1);
		*p++ = ret_enosys;
	}
	*p++ = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);

	struct sock_fprog fprog = {.len = (unsigned short)(p - prog), .filter = prog};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		perror("enosys: PR_SET_NO_NEW_PRIVS");
		exit(2);
	}
	if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) {
		perror("enosys: seccomp");
		exit(2);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: enosys --floor VERSION [--deny NR]... [--allow NR]... [--] COMMAND [ARG]...\n"
			"       enosys --list VERSION\n"
			"       enosys --call NR...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "--list") == 0) {
		int floor = parse_version(argv[2]);
		for (size_t i = 0; i < NCALLS; i++)
			if (blocked(&calls[i], floor))
				printf("%d %s %d.%d.%d\n", calls[i].nr, calls[i].name,
				       calls[i].since >> 16, (calls[i].since >> 8) & 255,
				       calls[i].since & 255);
		for (size_t i = 0; i < NFLAGS; i++)
			if (flags[i].since > floor)
				printf("%d %s %d.%d.%d EINVAL\n", flags[i].nr, flags[i].name,
				       flags[i].since >> 16, (flags[i].since >> 8) & 255,
				       flags[i].since & 255);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--table") == 0) {
		for (size_t i = 0; i < NCALLS; i++)
			printf("%d %s\n", calls[i].nr, calls[i].name);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--call") == 0) {
		/* Zero arguments: every call probed here fails harmlessly or is a
		 * no-op with them; what matters is whether the errno is ENOSYS. */
		for (int i = 2; i < argc; i++) {
			if (strchr(argv[i], ':')) {
				/* NR:ARG...: "p" stands for a pointer to two ints
				 * (socketpair's result). */
				long a[7] = {0};
				int pair[2];
				char *q = argv[i];
				for (int k = 0; k < 7 && *q; k++) {
					if (*q == 'p') {
						a[k] = (long)pair;
						q++;
					} else {
						a[k] = strtol(q, &q, 0);
					}
					if (*q == ':')
						q++;
				}
				errno = 0;
				long r = syscall(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
				printf("%s %s\n", argv[i], r >= 0 ? "ok" : strerrorname_np(errno));
				continue;
			}
			long nr = strtol(argv[i], NULL, 0);
			errno = 0;
			long r = syscall(nr, 0, 0, 0, 0, 0, 0);
			printf("%s %s\n", argv[i], r == -1 && errno == ENOSYS ? "ENOSYS" : "present");
		}
		return 0;
	}
	if (argc < 4 || strcmp(argv[1], "--floor") != 0)
		usage();
	int floor = parse_version(argv[2]);
	int first = 3;
	for (;;) {
		if (first + 1 < argc && strcmp(argv[first], "--deny") == 0 && ndenied < 16)
			denied[ndenied++] = strtol(argv[first + 1], NULL, 0);
		else if (first + 1 < argc && strcmp(argv[first], "--allow") == 0 && nallowed < 16)
			allowed[nallowed++] = strtol(argv[first + 1], NULL, 0);
		else
			break;
		first += 2;
	}
	if (first < argc && strcmp(argv[first], "--") == 0)
		first++;
	if (first >= argc)
		usage();
	if (floor < KV(3, 0, 0) && personality(PER_LINUX | UNAME26) == -1) {
		perror("enosys: personality");
		return 2;
	}
	install(floor);
	execvp(argv[first], &argv[first]);
	fprintf(stderr, "enosys: %s: %s\n", argv[first], strerror(errno));
	return 127;
}
