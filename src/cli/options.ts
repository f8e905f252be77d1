// What the clamonacc-compatible command line asks for, after validation. src/cli/args.ts builds it from
// argv; the engine reads its part of it (EngineOptions, src/engine/plan.ts). Flag meanings are clamonacc's
// and never change.
import type { ClamdEndpoint } from "../config/types.ts";
import type { EngineOptions } from "../engine/plan.ts";

export interface RunOptions extends EngineOptions {
  /** -c/--config-file; default /etc/clamav/clamd.conf. */
  configFile: string;
  /** --config-dir: onacc's drop-in directory for onacc-only options; default /etc/onacc/onacc.conf.d. */
  configDir?: string;
  /** -W/--watch-list=FILE. */
  watchList?: string;
  /** -e/--exclude-list=FILE. */
  excludeList?: string;
  /** -p/--ping=N[:I] and -w/--wait (= 30:1): wait for clamd before starting. */
  ping?: { attempts: number; intervalSec: number };
  /** -p/--ping without -w/--wait: as in clamonacc, only ping clamd (exit 0 on PONG, 1 when it never answers). */
  pingOnly?: boolean;
  /** -h/--help: print the help and exit 0. */
  help?: boolean;
  /** -V/--version: print the version and exit 0. */
  version?: boolean;
  /**
   * --clamd URL (repeatable): these endpoints, in order, instead of the configuration's LocalSocket/TCPSocket;
   * tls:// ones already carry --tls-ca/--tls-cert/--tls-key and --tls-no-verify-hostname.
   */
  clamd?: ClamdEndpoint[];
  /** --status-socket PATH (absolute); null with --status-socket=none. Default /run/onacc/status.sock. */
  statusSocket: string | null;
  /** --metrics-listen ADDR: serve Prometheus text at http://ADDR/metrics. A bare port means 127.0.0.1. */
  metricsListen?: { host: string; port: number };
}

export const DEFAULT_CONFIG_FILE = "/etc/clamav/clamd.conf";
