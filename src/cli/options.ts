// What the clamonacc-compatible command line asks for, after validation. src/cli/args.ts builds it from
// argv; the engine and the clamd client read it. Flag meanings are clamonacc's and never change.
import type { ScanMode } from "../clamd/types.ts";
import type { ClamdEndpoint } from "../config/types.ts";

export type ActionOnFound =
  | { kind: "none" }
  | { kind: "remove" } // --remove
  | { kind: "move"; dir: string } // --move=DIR
  | { kind: "copy"; dir: string }; // --copy=DIR

export interface RunOptions {
  /** -c/--config-file; default /etc/clamav/clamd.conf. */
  configFile: string;
  /** --config-dir: onacc's drop-in directory for onacc-only options; default /etc/onacc/onacc.conf.d. */
  configDir?: string;
  /** -F/--foreground: stay attached, print to the console. */
  foreground: boolean;
  /** -v/--verbose. */
  verbose: boolean;
  /** -l/--log=FILE. */
  logFile?: string;
  /** -W/--watch-list=FILE. */
  watchList?: string;
  /** -e/--exclude-list=FILE. */
  excludeList?: string;
  action: ActionOnFound;
  /** -z/--allmatch. */
  allmatch: boolean;
  /** --fdpass / --stream; "auto" = fd passing over a local socket, streaming over TCP. */
  scanMode: ScanMode | "auto";
  /** -p/--ping=N[:I] and -w/--wait (= 30:1): wait for clamd before starting. */
  ping?: { attempts: number; intervalSec: number };
  /** -p/--ping without -w/--wait: as in clamonacc, only ping clamd (exit 0 on PONG, 1 when it never answers). */
  pingOnly?: boolean;
  /** -h/--help: print the help and exit 0. */
  help?: boolean;
  /** -V/--version: print the version and exit 0. */
  version?: boolean;
  /** --cache-size=N: entries of the userspace verdict cache; 0 = off. */
  cacheSize: number;
  /** --kernel-cache=yes|no: fanotify ignore marks for files found clean. */
  kernelCache: boolean;
  /**
   * --clamd URL (repeatable): these endpoints, in order, instead of the configuration's LocalSocket/TCPSocket;
   * tls:// ones already carry --tls-ca/--tls-cert/--tls-key and --tls-no-verify-hostname.
   */
  clamd?: ClamdEndpoint[];
  /** --status-socket PATH (absolute); null with --status-socket=none. Default /run/onacc/status.sock. */
  statusSocket: string | null;
  /** --metrics-listen ADDR: serve Prometheus text at http://ADDR/metrics. A bare port means 127.0.0.1. */
  metricsListen?: { host: string; port: number };
  /** --log-format: the --log file's lines (and the console's when there is no --log). */
  logFormat: "text" | "json";
  /** --log-max-size in bytes: rotate the --log file before it grows past this. */
  logMaxSize?: number;
  /** --log-keep: rotated files kept (FILE.1 … FILE.N); default 5. */
  logKeep: number;
}

export const DEFAULT_CONFIG_FILE = "/etc/clamav/clamd.conf";
