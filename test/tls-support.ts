/**
 * Certificates for the TLS tests, made at test time with the `openssl` command (Debian package
 * `openssl`) in a temporary folder that is removed as soon as the PEM texts are read: a root CA, an
 * intermediate, server certificates for `localhost`/127.0.0.1 and for SNI names, a client
 * certificate, a self-signed one nobody trusts, an encrypted key. P-256 keys throughout. Made once
 * per test process (the first suite that asks pays ~0.3 s).
 *
 * Suites call `tlsCertificates(this)` in `before`: it skips the suite, visibly, when `openssl` is
 * missing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from 'mocha';

export interface KeyPair {
  /** PEM of the private key. */
  readonly key: string;
  /** PEM of the certificate (and its chain, where it has one). */
  readonly cert: string;
}

export interface TestCertificates {
  /** The root every certificate below chains to (except `selfSigned`). */
  readonly ca: string;
  /** localhost / 127.0.0.1, signed by an intermediate; `cert` holds leaf + intermediate. */
  readonly server: KeyPair;
  /** The same leaf without its intermediate (a client trusting only the root cannot verify it). */
  readonly serverLeafOnly: KeyPair;
  /** A second server certificate (localhost too), signed by the root: for rotation tests. */
  readonly serverB: KeyPair;
  /** SNI: `a.example.test`. */
  readonly sniA: KeyPair;
  /** SNI: `*.wild.example.test`. */
  readonly sniWild: KeyPair;
  /** A client certificate (`CN=test client`) for mutual TLS. */
  readonly client: KeyPair;
  /** Self-signed for localhost: trusted by nobody. */
  readonly selfSigned: KeyPair;
  /** `server`'s key encrypted with `passphrase`. */
  readonly encryptedKey: string;
  readonly passphrase: string;
}

let made: TestCertificates | undefined;
let missing: string | undefined;

/** Whether the `openssl` command runs here. */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeAll(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'mr-tls-certs-'));
  try {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    const read = (name: string) => readFileSync(join(dir, name), 'utf8');
    const ext = (name: string, lines: string[]) => writeFileSync(join(dir, name), `${lines.join('\n')}\n`);
    // Root and intermediate CAs.
    ext('ca.ext', ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']);
    openssl(dir, [
      'req',
      '-x509',
      ...ec,
      '-days',
      '2',
      '-subj',
      '/CN=multireactor test root',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    const sign = (name: string, subject: string, extLines: string[], issuer: string) => {
      openssl(dir, ['req', '-new', ...ec, '-subj', subject, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
      ext(`${name}.ext`, extLines);
      openssl(dir, [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        `${issuer}.pem`,
        '-CAkey',
        `${issuer}.key`,
        '-CAcreateserial',
        '-days',
        '2',
        '-extfile',
        `${name}.ext`,
        '-out',
        `${name}.pem`,
      ]);
    };
    sign(
      'inter',
      '/CN=multireactor test intermediate',
      ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign,cRLSign'],
      'ca',
    );
    const serverExt = (names: string) => [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${names}`,
    ];
    sign('server', '/CN=localhost', serverExt('DNS:localhost,IP:127.0.0.1,IP:::1'), 'inter');
    sign('serverb', '/CN=localhost (B)', serverExt('DNS:localhost,IP:127.0.0.1'), 'ca');
    sign('snia', '/CN=a.example.test', serverExt('DNS:a.example.test'), 'ca');
    sign('sniwild', '/CN=*.wild.example.test', serverExt('DNS:*.wild.example.test'), 'ca');
    sign(
      'client',
      '/CN=test client',
      ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth'],
      'ca',
    );
    openssl(dir, [
      'req',
      '-x509',
      ...ec,
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      'self.key',
      '-out',
      'self.pem',
    ]);
    const passphrase = 'correct horse';
    openssl(dir, ['pkey', '-in', 'server.key', '-aes256', '-passout', `pass:${passphrase}`, '-out', 'server-enc.key']);
    const pair = (name: string): KeyPair => ({ key: read(`${name}.key`), cert: read(`${name}.pem`) });
    return {
      ca: read('ca.pem'),
      server: { key: read('server.key'), cert: read('server.pem') + read('inter.pem') },
      serverLeafOnly: pair('server'),
      serverB: pair('serverb'),
      sniA: pair('snia'),
      sniWild: pair('sniwild'),
      client: pair('client'),
      selfSigned: pair('self'),
      encryptedKey: read('server-enc.key'),
      passphrase,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The test certificates; skips the calling suite (`this` of a mocha `before`) with a message naming
 * the Debian package when `openssl` is not installed.
 */
export function tlsCertificates(ctx: Context): TestCertificates {
  if (made !== undefined) return made;
  if (missing === undefined && !hasOpenssl()) missing = 'openssl';
  if (missing !== undefined) {
    console.log(`      (skipped: the ${missing} command is missing — apt-get install openssl)`);
    ctx.skip();
  }
  made = makeAll();
  return made;
}

/** Writes PEM texts into a fresh temporary folder; returns its path and a function that removes it. */
export function writePemFiles(files: Record<string, string>): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'mr-tls-files-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text, { mode: 0o600 });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
