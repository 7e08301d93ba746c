//! `camtls gen-cert`: a new key and a self-signed certificate for a router
//! that has none, naming every DNS name and address it is reached by.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509NameBuilder, X509};

use crate::cli::GenCertArgs;
use crate::Error;

/// Writes the pair and returns the certificate's SHA-256 fingerprint.
pub fn generate(args: &GenCertArgs) -> Result<String, Error> {
    if args.days == 0 {
        return Err(Error::new("--days must be at least 1"));
    }
    if !args.force {
        for path in [&args.cert, &args.key] {
            if path.exists() {
                return Err(Error::new(format!(
                    "{} already exists; add --force to replace it",
                    path.display()
                )));
            }
        }
    }
    let names = if args.names.is_empty() {
        vec![String::from("localhost")]
    } else {
        args.names.clone()
    };
    for name in &names {
        let ok = name.parse::<IpAddr>().is_ok()
            || (!name.is_empty()
                && name.len() <= 253
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.*".contains(&b)));
        if !ok {
            return Err(Error::new(format!(
                "--name {name:?} is not a DNS name or IP address"
            )));
        }
    }
    let key = new_key(args.rsa).map_err(|e| Error::new(format!("cannot create the key: {e}")))?;
    let cert = self_signed(&key, &names, args.days)
        .map_err(|e| Error::new(format!("cannot create the certificate: {e}")))?;
    let key_pem = key
        .private_key_to_pem_pkcs8()
        .map_err(|e| Error::new(format!("cannot encode the key: {e}")))?;
    let cert_pem = cert
        .to_pem()
        .map_err(|e| Error::new(format!("cannot encode the certificate: {e}")))?;
    write_new(&args.key, &key_pem, 0o600, args.force)?;
    write_new(&args.cert, &cert_pem, 0o644, args.force)?;
    Ok(crate::tls::fingerprint(&cert))
}

fn new_key(rsa: bool) -> Result<PKey<Private>, openssl::error::ErrorStack> {
    if rsa {
        PKey::from_rsa(Rsa::generate(2048)?)
    } else {
        let mut group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        group.set_asn1_flag(openssl::ec::Asn1Flag::NAMED_CURVE);
        PKey::from_ec_key(EcKey::generate(&group)?)
    }
}

fn self_signed(
    key: &PKey<Private>,
    names: &[String],
    days: u32,
) -> Result<X509, openssl::error::ErrorStack> {
    let mut subject = X509NameBuilder::new()?;
    subject.append_entry_by_nid(Nid::COMMONNAME, &names[0])?;
    subject.append_entry_by_nid(Nid::ORGANIZATIONNAME, "camtls")?;
    let subject = subject.build();

    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;

    let mut b = X509::builder()?;
    b.set_version(2)?;
    let serial = Asn1Integer::from_bn(&serial)?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&subject)?;
    b.set_issuer_name(&subject)?;
    b.set_pubkey(key)?;
    // An hour back, for phones whose clock runs a little behind.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let not_before = Asn1Time::from_unix((now - 3600) as _)?;
    let not_after = Asn1Time::days_from_now(days)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;

    let mut san = SubjectAlternativeName::new();
    for name in names {
        if name.parse::<IpAddr>().is_ok() {
            san.ip(name);
        } else {
            san.dns(name);
        }
    }
    let context = b.x509v3_context(None, None);
    let san = san.build(&context)?;
    b.append_extension(san)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    let mut usage = KeyUsage::new();
    usage.critical().digital_signature();
    if key.rsa().is_ok() {
        usage.key_encipherment();
    }
    b.append_extension(usage.build()?)?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    b.sign(key, MessageDigest::sha256())?;
    Ok(b.build())
}

fn write_new(path: &Path, contents: &[u8], mode: u32, replace: bool) -> Result<(), Error> {
    let mut options = OpenOptions::new();
    options.write(true).mode(mode);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let fail = |e: std::io::Error| Error::new(format!("cannot write {}: {e}", path.display()));
    let mut file = options.open(path).map_err(fail)?;
    // An existing file keeps its old mode through truncate; set it anyway.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    file.write_all(contents).map_err(fail)
}
