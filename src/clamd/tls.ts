// TLS to clamd through a terminator (stunnel, haproxy…): OpenSSL over the client's own non-blocking socket.
// Each call does one non-blocking step and says what to poll for next; the caller's poll loop waits.
import { Errno } from "../../ffi/errors.ts";
import { POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, pollOne } from "../../ffi/poll.ts";
import {
  freeContext,
  attachFd,
  clearOpenSslErrors,
  connectStep,
  errorOf,
  expectHost,
  freeSession,
  loadTrust,
  newClientContext,
  newSession,
  privateKeyMatches,
  readSome,
  sendServerName,
  shutdownOnce,
  SSL_ERROR_SSL,
  SSL_ERROR_SYSCALL,
  SSL_ERROR_WANT_READ,
  SSL_ERROR_WANT_WRITE,
  SSL_ERROR_ZERO_RETURN,
  takeOpenSslErrors,
  useCertificateChain,
  usePrivateKey,
  verifyErrorText,
  verifyResult,
  writeSome,
  X509_V_OK,
  type SslPointer,
} from "../../ffi/ssl.ts";
import type { TlsEndpoint } from "../config/types.ts";
import { ClamdError } from "../errors.ts";
import { parseIPv4, parseIPv6 } from "./address.ts";

// <openssl/x509_vfy.h>
const X509_V_ERR_HOSTNAME_MISMATCH = 62;
const X509_V_ERR_IP_ADDRESS_MISMATCH = 64;

/** Contexts by (CA, certificate, key): loading a CA file per connection would cost more than the scan. */
const _contexts = new Map<string, SslPointer>();

/**
 * The SSL_CTX for an endpoint's files, made once per thread. Throws ClamdError naming the file that could
 * not be used (missing, not PEM, key not matching the certificate).
 */
function tlsContextFor(e: TlsEndpoint, description: string): SslPointer {
  const key = JSON.stringify([e.ca ?? null, e.cert ?? null, e.key ?? null]);
  const known = _contexts.get(key);
  if (known !== undefined) return known;
  clearOpenSslErrors();
  let ctx: SslPointer;
  try {
    ctx = newClientContext();
  } catch (err) {
    throw new ClamdError("connect", `Cannot set up TLS for clamd at ${description}: ${(err as Error).message}`, { cause: err });
  }
  // A context that cannot be set up is freed before the error goes out (it is not cached either).
  try {
    const fail = (what: string): never => {
      const why = takeOpenSslErrors().join("; ") || "no reason given";
      throw new ClamdError("connect", `Cannot set up TLS for clamd at ${description}: ${what}: ${why}`);
    };
    if (!loadTrust(ctx, e.ca)) fail(e.ca === undefined ? "cannot load the system's trusted CAs" : `cannot load CA file "${e.ca}"`);
    if (e.cert !== undefined || e.key !== undefined) {
      if (e.cert === undefined || e.key === undefined) fail("a client certificate needs both a certificate and a key file");
      if (!useCertificateChain(ctx, e.cert!)) fail(`cannot load client certificate "${e.cert}"`);
      if (!usePrivateKey(ctx, e.key!) || !privateKeyMatches(ctx)) {
        const reasons = takeOpenSslErrors();
        if (reasons.some((r) => /key values mismatch/.test(r))) {
          throw new ClamdError("connect", `Cannot set up TLS for clamd at ${description}: client key "${e.key}" does not match certificate "${e.cert}"`);
        }
        throw new ClamdError("connect", `Cannot set up TLS for clamd at ${description}: cannot load client key "${e.key}": ${reasons.join("; ") || "no reason given"}`);
      }
    }
  } catch (err) {
    freeContext(ctx);
    throw err;
  }
  _contexts.set(key, ctx);
  return ctx;
}

/**
 * One TLS session over a connected non-blocking socket. handshake(), send() and recv() each make one
 * non-blocking attempt: send()/recv() mirror sendSome()/recvSome() — bytes, 0 for end of stream (recv),
 * or -errno, where -EAGAIN means "poll for `waitEvents`, then call again". TLS failures (a refused
 * certificate, an alert from the terminator) are thrown as ClamdError naming the endpoint.
 */
export class TlsSession {
  /** The poll events the last -EAGAIN (or unfinished handshake) waits for: POLLIN or POLLOUT. */
  waitEvents = POLLOUT;
  private ssl: SslPointer | null;

  private constructor(
    ssl: SslPointer,
    private readonly fd: number,
    private readonly endpoint: TlsEndpoint,
    private readonly description: string,
  ) {
    this.ssl = ssl;
  }

  /**
   * A session on connected socket `fd`, set up to check the chain against the CA and, unless
   * verifyHostname is off, the name. Throws ClamdError "connect" when the context or session cannot be made.
   */
  static start(fd: number, e: TlsEndpoint, description: string): TlsSession {
    const ctx = tlsContextFor(e, description);
    clearOpenSslErrors();
    const ssl = newSession(ctx);
    if (ssl === null) throw new ClamdError("connect", `Cannot start TLS with clamd at ${description}: SSL_new failed: ${takeOpenSslErrors().join("; ")}`);
    const name = e.servername ?? e.host;
    const literal = parseIPv4(name) !== undefined || parseIPv6(name) !== undefined;
    const ok =
      attachFd(ssl, fd) &&
      (literal || sendServerName(ssl, name)) &&
      (!e.verifyHostname || expectHost(ssl, literal && name.startsWith("[") ? name.slice(1, -1) : name));
    if (!ok) {
      const why = takeOpenSslErrors().join("; ") || "setup failed";
      freeSession(ssl);
      throw new ClamdError("connect", `Cannot start TLS with clamd at ${description}: ${why}`);
    }
    return new TlsSession(ssl, fd, e, description);
  }

  /**
   * One handshake step: true when done; false when it must wait for `waitEvents`. Throws ClamdError
   * "connect" naming OpenSSL's verify error ("certificate verify failed: hostname mismatch").
   */
  handshake(): boolean {
    const ssl = this.live();
    clearOpenSslErrors();
    const r = connectStep(ssl);
    if (r === 1) return true;
    const err = errorOf(ssl, r);
    if (err === SSL_ERROR_WANT_READ || err === SSL_ERROR_WANT_WRITE) {
      this.waitEvents = err === SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
      return false;
    }
    throw handshakeError(ssl, err, this.description, this.endpoint.servername ?? this.endpoint.host, this.endpoint);
  }

  send(buf: Uint8Array, offset: number, length: number): number {
    const ssl = this.live();
    clearOpenSslErrors();
    const n = writeSome(ssl, buf, offset, length);
    if (n > 0) return n;
    return this.failure(ssl, n, "sending");
  }

  recv(buf: Uint8Array, offset: number, length: number): number {
    const ssl = this.live();
    clearOpenSslErrors();
    const n = readSome(ssl, buf, offset, length);
    if (n > 0) return n;
    const err = errorOf(ssl, n);
    if (err === SSL_ERROR_ZERO_RETURN) return 0;
    return this.failure(ssl, n, "reading");
  }

  /** Sends close_notify (once, without waiting) and frees the session; the caller closes the socket. */
  close(): void {
    if (this.ssl === null) return;
    clearOpenSslErrors();
    shutdownOnce(this.ssl);
    clearOpenSslErrors();
    freeSession(this.ssl);
    this.ssl = null;
  }

  private live(): SslPointer {
    if (this.ssl === null) throw new ClamdError("connect", `The TLS session with clamd at ${this.description} is closed`);
    return this.ssl;
  }

  /** Maps SSL_get_error() to the -errno convention, or throws for a TLS-level failure. */
  private failure(ssl: SslPointer, ret: number, doing: string): number {
    const err = errorOf(ssl, ret);
    if (err === SSL_ERROR_WANT_READ) {
      this.waitEvents = POLLIN;
      return -Errno.EAGAIN;
    }
    if (err === SSL_ERROR_WANT_WRITE) {
      this.waitEvents = POLLOUT;
      return -Errno.EAGAIN;
    }
    if (err === SSL_ERROR_ZERO_RETURN) return -Errno.EPIPE;
    if (err === SSL_ERROR_SYSCALL) {
      const reasons = takeOpenSslErrors();
      if (reasons.length === 0) {
        // The socket itself failed (reset, broken pipe) or closed: the same as on a plain connection.
        const state = pollOne(this.fd, POLLIN | POLLOUT, 0);
        return state & (POLLERR | POLLHUP | POLLNVAL) ? -Errno.ECONNRESET : -Errno.EPIPE;
      }
      throw new ClamdError("connect", `TLS with clamd at ${this.description} failed while ${doing}: ${reasons.join("; ")}`);
    }
    const reasons = takeOpenSslErrors();
    throw new ClamdError(
      err === SSL_ERROR_SSL ? "connect" : "protocol",
      `TLS with clamd at ${this.description} failed while ${doing}: ${reasons.join("; ") || `SSL error ${err}`}${alertHint(reasons)}`,
    );
  }
}

function handshakeError(ssl: SslPointer, err: number, description: string, name: string, e: TlsEndpoint): ClamdError {
  const reasons = takeOpenSslErrors();
  const verify = verifyResult(ssl);
  if (verify !== X509_V_OK) {
    const what = verifyErrorText(verify);
    const hint =
      verify === X509_V_ERR_HOSTNAME_MISMATCH || verify === X509_V_ERR_IP_ADDRESS_MISMATCH
        ? ` (the certificate does not name "${name}"; connect by a name it carries, or turn the check off with --tls-no-verify-hostname)`
        : e.ca !== undefined
          ? ` (is "${e.ca}" the CA that signed the terminator's certificate?)`
          : " (no --tls-ca given: checked against the system's trusted CAs)";
    return new ClamdError("connect", `TLS handshake with clamd at ${description} refused its certificate: ${what} (X509 error ${verify})${hint}`);
  }
  if (err === SSL_ERROR_SYSCALL && reasons.length === 0) {
    return new ClamdError("connect", `TLS handshake with clamd at ${description} failed: the terminator closed the connection`);
  }
  return new ClamdError("connect", `TLS handshake with clamd at ${description} failed: ${reasons.join("; ") || `SSL error ${err}`}${alertHint(reasons)}`);
}

/** A pointer for the alerts a terminator sends when it rejects the client. */
function alertHint(reasons: string[]): string {
  const text = reasons.join(" ");
  if (/certificate required|handshake failure|unknown ca|bad certificate/.test(text)) {
    return " (the terminator refused onacc: does it require a client certificate? see --tls-cert/--tls-key)";
  }
  return "";
}
