// Shared by the clamd client tests: the test files (written where the test clamd's user can read them),
// clients for each transport of one test clamd, and the expected verdicts.
import { closeSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ClamdClient, type ClamdClientOptions } from "../../src/clamd/client.ts";
import type { ScanOutcome } from "../../src/clamd/types.ts";
import type { ClamdEndpoint } from "../../src/config/types.ts";
import type { TestClamd } from "../fixtures/clamd.ts";
import { EICAR, EICAR_SIGNATURE, MARKER, MARKER2, MARKER2_SIGNATURE, MARKER_SIGNATURE, markedBody } from "../fixtures/signatures.ts";

export const EICAR_FOUND = `${EICAR_SIGNATURE}.UNOFFICIAL`;
export const MARKER_FOUND = `${MARKER_SIGNATURE}.UNOFFICIAL`;
export const MARKER2_FOUND = `${MARKER2_SIGNATURE}.UNOFFICIAL`;

export interface TestFiles {
  eicar: string;
  marked: string;
  /** Carries MARKER and MARKER2: two signatures for an all-match scan. */
  both: string;
  clean: string;
  empty: string;
}

export function writeTestFiles(dir: string): TestFiles {
  const files: TestFiles = {
    eicar: join(dir, "eicar.com"),
    marked: join(dir, "marked body.bin"),
    both: join(dir, "both.bin"),
    clean: join(dir, "clean.txt"),
    empty: join(dir, "empty"),
  };
  writeFileSync(files.eicar, EICAR);
  writeFileSync(files.marked, markedBody(200 * 1024)); // several INSTREAM chunks, marker in the middle
  const both = markedBody(64 * 1024);
  both.write(MARKER2, 100, "latin1");
  writeFileSync(files.both, both);
  writeFileSync(files.clean, `nothing to see here, not even ${MARKER.slice(0, 6)}\n`);
  writeFileSync(files.empty, "");
  return files;
}

export type Transport = "unix" | "tcp" | "tcp6";

export function endpointOf(clamd: TestClamd, transport: Transport): ClamdEndpoint {
  if (transport === "unix") return { kind: "unix", path: clamd.socket };
  return { kind: "tcp", host: transport === "tcp" ? "127.0.0.1" : "::1", port: clamd.port };
}

export function clientOf(clamd: TestClamd, transport: Transport, opts: Partial<ClamdClientOptions> = {}): ClamdClient {
  return new ClamdClient({ endpoint: endpointOf(clamd, transport), timeoutMs: 5000, retries: 0, streamMaxLength: 1024 * 1024, ...opts });
}

/** Runs `fn` with the file open read-only, closing it afterwards. */
export function withFd<T>(path: string | Buffer, fn: (fd: number) => T): T {
  const fd = openSync(path, "r");
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

export const infected = (...signatures: string[]): ScanOutcome => ({ ok: true, verdict: { kind: "infected", signatures }, attempts: 1 });
export const clean: ScanOutcome = { ok: true, verdict: { kind: "clean" }, attempts: 1 };
