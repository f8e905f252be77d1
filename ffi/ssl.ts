// OpenSSL 3 (libssl.so.3, libcrypto.so.3) through bun:ffi: the few calls a TLS client needs to talk to
// clamd through a TLS terminator over onacc's own non-blocking socket. Opened once per thread.
import { dlopen, FFIType, ptr as pointerOf, type Pointer } from "bun:ffi";
import { cstr } from "./libc.ts";

const { i32, i64_fast, u64, ptr, cstring, void: none } = FFIType;

// <openssl/ssl.h>
export const SSL_FILETYPE_PEM = 1;
export const SSL_VERIFY_PEER = 1;
export const SSL_ERROR_NONE = 0;
export const SSL_ERROR_SSL = 1;
export const SSL_ERROR_WANT_READ = 2;
export const SSL_ERROR_WANT_WRITE = 3;
export const SSL_ERROR_SYSCALL = 5;
export const SSL_ERROR_ZERO_RETURN = 6;
const SSL_CTRL_MODE = 33;
const SSL_CTRL_SET_TLSEXT_HOSTNAME = 55;
const SSL_CTRL_SET_MIN_PROTO_VERSION = 123;
const TLSEXT_NAMETYPE_host_name = 0;
const TLS1_2_VERSION = 0x0303;
// Hint: partial writes make SSL_write behave like send(); a moving buffer lets a retry pass a new pointer.
const SSL_MODE_ENABLE_PARTIAL_WRITE = 1;
const SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER = 2;
/** A peer that closes TCP without close_notify reads as end of stream; clamd's replies carry their own end. */
const SSL_OP_IGNORE_UNEXPECTED_EOF = 1n << 7n;
// <openssl/x509_vfy.h>
export const X509_V_OK = 0;

function open() {
  const ssl = dlopen("libssl.so.3", {
    TLS_client_method: { args: [], returns: ptr },
    SSL_CTX_new: { args: [ptr], returns: ptr },
    SSL_CTX_free: { args: [ptr], returns: none },
    SSL_CTX_ctrl: { args: [ptr, i32, i64_fast, ptr], returns: i64_fast },
    SSL_CTX_set_options: { args: [ptr, u64], returns: u64 },
    SSL_CTX_set_verify: { args: [ptr, i32, ptr], returns: none },
    SSL_CTX_load_verify_locations: { args: [ptr, ptr, ptr], returns: i32 },
    SSL_CTX_set_default_verify_paths: { args: [ptr], returns: i32 },
    SSL_CTX_use_certificate_chain_file: { args: [ptr, ptr], returns: i32 },
    SSL_CTX_use_PrivateKey_file: { args: [ptr, ptr, i32], returns: i32 },
    SSL_CTX_check_private_key: { args: [ptr], returns: i32 },
    SSL_new: { args: [ptr], returns: ptr },
    SSL_free: { args: [ptr], returns: none },
    SSL_set_fd: { args: [ptr, i32], returns: i32 },
    SSL_set1_host: { args: [ptr, ptr], returns: i32 },
    SSL_ctrl: { args: [ptr, i32, i64_fast, ptr], returns: i64_fast },
    SSL_connect: { args: [ptr], returns: i32 },
    SSL_read: { args: [ptr, ptr, i32], returns: i32 },
    SSL_write: { args: [ptr, ptr, i32], returns: i32 },
    SSL_get_error: { args: [ptr, i32], returns: i32 },
    SSL_shutdown: { args: [ptr], returns: i32 },
    SSL_get_verify_result: { args: [ptr], returns: i64_fast },
  });
  const crypto = dlopen("libcrypto.so.3", {
    X509_verify_cert_error_string: { args: [i64_fast], returns: cstring },
    ERR_get_error: { args: [], returns: u64 },
    ERR_clear_error: { args: [], returns: none },
    ERR_reason_error_string: { args: [u64], returns: cstring },
    ERR_error_string_n: { args: [u64, ptr, u64], returns: none },
  });
  return { ssl: ssl.symbols, crypto: crypto.symbols };
}

let _lib: ReturnType<typeof open> | undefined;

/** The bindings, loaded on first use (a thread that never speaks TLS never loads libssl). */
function lib(): ReturnType<typeof open> {
  if (!_lib) {
    try {
      _lib = open();
    } catch (err) {
      throw new Error(`Cannot load OpenSSL (libssl.so.3): ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return _lib;
}

/** An opaque OpenSSL object (SSL_CTX*, SSL*). */
export type SslPointer = Pointer;

/** Every error OpenSSL queued on this thread, as reason texts ("certificate verify failed"); empties the queue. */
export function takeOpenSslErrors(): string[] {
  const { crypto } = lib();
  const reasons: string[] = [];
  for (let e = crypto.ERR_get_error(); e !== 0n; e = crypto.ERR_get_error()) {
    const reason = crypto.ERR_reason_error_string(e);
    if (reason !== null && String(reason) !== "") {
      reasons.push(String(reason));
    } else {
      const buf = new Uint8Array(new ArrayBuffer(256));
      crypto.ERR_error_string_n(e, buf, 256n);
      reasons.push(new TextDecoder().decode(buf.subarray(0, buf.indexOf(0))));
    }
  }
  return reasons;
}

export function clearOpenSslErrors(): void {
  lib().crypto.ERR_clear_error();
}

/** X509_verify_cert_error_string(): "unable to get local issuer certificate", "hostname mismatch", … */
export function verifyErrorText(code: number): string {
  return String(lib().crypto.X509_verify_cert_error_string(code));
}

/** A client context: TLS ≥ 1.2, peer verification on, partial writes, unexpected EOF read as EOF. */
export function newClientContext(): SslPointer {
  const { ssl } = lib();
  const method = ssl.TLS_client_method();
  const ctx = method === null ? null : (ssl.SSL_CTX_new(method) as SslPointer | null);
  if (ctx === null) throw new Error(`SSL_CTX_new failed: ${takeOpenSslErrors().join("; ") || "no reason given"}`);
  ssl.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, null);
  ssl.SSL_CTX_ctrl(ctx, SSL_CTRL_MODE, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, null);
  ssl.SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  ssl.SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, null);
  return ctx;
}

export function freeContext(ctx: SslPointer): void {
  lib().ssl.SSL_CTX_free(ctx);
}

/** Trust the CA certificates in `caFile` (PEM); without a file, the system's default trust store. */
export function loadTrust(ctx: SslPointer, caFile: string | undefined): boolean {
  const { ssl } = lib();
  if (caFile === undefined) return ssl.SSL_CTX_set_default_verify_paths(ctx) === 1;
  return ssl.SSL_CTX_load_verify_locations(ctx, cstr(caFile), null) === 1;
}

/** The client certificate (PEM, with its chain) presented when the terminator asks for one. */
export function useCertificateChain(ctx: SslPointer, certFile: string): boolean {
  return lib().ssl.SSL_CTX_use_certificate_chain_file(ctx, cstr(certFile)) === 1;
}

export function usePrivateKey(ctx: SslPointer, keyFile: string): boolean {
  return lib().ssl.SSL_CTX_use_PrivateKey_file(ctx, cstr(keyFile), SSL_FILETYPE_PEM) === 1;
}

export function privateKeyMatches(ctx: SslPointer): boolean {
  return lib().ssl.SSL_CTX_check_private_key(ctx) === 1;
}

export function newSession(ctx: SslPointer): SslPointer | null {
  return lib().ssl.SSL_new(ctx) as SslPointer | null;
}

export function freeSession(s: SslPointer): void {
  lib().ssl.SSL_free(s);
}

export function attachFd(s: SslPointer, fd: number): boolean {
  return lib().ssl.SSL_set_fd(s, fd) === 1;
}

/** The name (or IP address) the certificate must carry; OpenSSL 3 checks IP literals against IP SANs. */
export function expectHost(s: SslPointer, host: string): boolean {
  return lib().ssl.SSL_set1_host(s, cstr(host)) === 1;
}

/** SNI: the server name sent in the ClientHello (never an IP literal, RFC 6066). */
export function sendServerName(s: SslPointer, name: string): boolean {
  // Hint: SSL_ctrl keeps its own copy of the name; our buffer may go after the call.
  return lib().ssl.SSL_ctrl(s, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, cstr(name)) === 1;
}

export function connectStep(s: SslPointer): number {
  return lib().ssl.SSL_connect(s);
}

/** SSL_read() into buf[offset..offset+length) (pointer arithmetic: no subarray per call). */
export function readSome(s: SslPointer, buf: Uint8Array, offset = 0, length = buf.length - offset): number {
  return lib().ssl.SSL_read(s, (pointerOf(buf) + offset) as Pointer, Math.min(length, 0x7fffffff));
}

/** SSL_write() of buf[offset..offset+length); a retry may pass another pointer (ACCEPT_MOVING_WRITE_BUFFER). */
export function writeSome(s: SslPointer, buf: Uint8Array, offset = 0, length = buf.length - offset): number {
  return lib().ssl.SSL_write(s, (pointerOf(buf) + offset) as Pointer, Math.min(length, 0x7fffffff));
}

export function errorOf(s: SslPointer, ret: number): number {
  return lib().ssl.SSL_get_error(s, ret);
}

/** Sends close_notify once, without waiting for the peer's. */
export function shutdownOnce(s: SslPointer): void {
  lib().ssl.SSL_shutdown(s);
}

export function verifyResult(s: SslPointer): number {
  return Number(lib().ssl.SSL_get_verify_result(s));
}
