#!/usr/bin/perl
# Removes algorithms that camtls never uses from the tables of OpenSSL's
# default provider (providers/defltprov.c), edited in place.
#
#   perl mk/openssl-trim.pl providers/defltprov.c
#
# Why: the provider references every algorithm in its tables, so the linker
# keeps all of them, and Configure has no switch for most. What stays covers
# TLS 1.2 and 1.3 as a server (ECDHE, DHE, AES-GCM, ChaCha20-Poly1305, RSA,
# RSA-PSS and ECDSA signatures; X25519, P-256, P-384 and P-521 key shares;
# no X448 and no EdDSA, which no browser takes as a server's certificate:
# 60 kB of curve448 code and tables), key and certificate generation, PEM key
# loading, PBKDF2 and the CTR DRBG. HMAC stays as a key type with its
# "signature" too: TLS 1.3 computes a resumed session's PSK binder through
# EVP_DigestSign with an HMAC key, so without them every resumption fails
# with "unsupported" (tests/tls_algorithms.rs proves each build keeps it).
# Each name must be found, so a new OpenSSL that renames one stops the build
# instead of silently keeping it.
use strict;
use warnings;

my @remove = qw(
  aes(?:128|192|256)(?:ofb|cfb|cfb1|cfb8|xts|ccm|cbc_cts|wrap|wrappad|wrapinv|wrappadinv)
  aes(?:128|192|256)cbc_hmac_sha(?:1|256|512)(?:_etm)?
  sha3_(?:224|256|384|512) keccak_(?:224|256|384|512|kmac_128|kmac_256)
  shake_(?:128|256) sha512_(?:224|256) md5_sha1
  kmac(?:128|256) gmac poly1305
  kdf_(?:sskdf|pkcs12|sshkdf|x963_kdf|kbkdf|x942_kdf|krb5kdf|hmac_drbg)
  kdf_(?:tls1_prf|hkdf)_keyexch
  drbg_hash drbg_ossl_hmac test_rng
  (?:rsa|ecdsa)_sha3_(?:224|256|384|512)_signature rsa_sha512_(?:224|256)_signature
  mac_legacy_poly1305_signature
  rsa_asym_kem ecx_asym_kem ec_asym_kem
  x448_keyexch x448_keymgmt ed448_keymgmt ed25519_keymgmt
  ed25519(?:ph|ctx)?_signature ed448(?:ph)?_signature
);

my $file = shift or die "usage: $0 providers/defltprov.c\n";
open my $in, '<', $file or die "$file: $!\n";
local $/;
my $src = <$in>;
close $in;

for my $name (@remove) {
    # One table entry: from its ALG(, ALGC( or { at the start of a line to
    # the ), or }, that ends it, never crossing into the next entry.
    my $n = $src =~ s{
        ^[ \t]*(?:ALGC?\(|\{[ ])
        (?:(?!\n[ \t]*(?:ALGC?\(|\{[ ]|\#|\}))[\s\S])*?
        \bossl_(?:$name)_functions\b
        (?:(?!\n[ \t]*(?:ALGC?\(|\{[ ]|\#|\}))[\s\S])*?
        (?:\),|\},)[ \t]*\n
    }{}gmx;
    die "$0: no entry for ossl_${name}_functions in $file\n" unless $n;
}

open my $out, '>', $file or die "$file: $!\n";
print $out $src;
close $out;
