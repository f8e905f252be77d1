// The one typed configuration every other module reads. src/config/ turns a clamd.conf-style file
// (plus --watch-list/--exclude-list) into this; nothing outside src/config/ parses text.

/** Where clamd listens. TCP hosts are kept as written; resolution happens when connecting. */
export type ClamdEndpoint =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number }
  | TlsEndpoint;

/**
 * clamd behind a TLS terminator (clamd itself speaks no TLS); only from `--clamd tls://host:port`.
 * Streaming only: descriptors cannot cross a network.
 */
export interface TlsEndpoint {
  kind: "tls";
  /** Where to connect; resolveEndpoint() replaces a name by its address and keeps the name in `servername`. */
  host: string;
  port: number;
  /** PEM file of the CA(s) that signed the terminator's certificate; the system trust store when absent. */
  ca?: string;
  /** PEM client certificate (with chain) and its key, for a terminator that requires one. */
  cert?: string;
  key?: string;
  /** The name sent as SNI and checked against the certificate (default: host). */
  servername?: string;
  /** Check that the certificate names `servername ?? host` (on unless --tls-no-verify-hostname). */
  verifyHostname: boolean;
}

export interface OnAccessOptions {
  /** OnAccessMountPath: whole mounts/filesystems to watch. */
  mountPaths: string[];
  /** OnAccessIncludePath plus --watch-list entries: directory trees to watch. */
  includePaths: string[];
  /** OnAccessExcludePath plus --exclude-list entries: subtrees never scanned. */
  excludePaths: string[];
  /** OnAccessExcludeUname: exact user names (not prefixes, unlike clamonacc). */
  excludeUnames: string[];
  /** OnAccessExcludeUID (repeatable). 0 means root here (in clamonacc a 0 disabled the whole option). */
  excludeUids: number[];
  /** OnAccessExcludeRootUID. */
  excludeRootUid: boolean;
  /** OnAccessMaxFileSize in bytes; 0 = no limit. Default 5 MiB. */
  maxFileSize: number;
  /** OnAccessMaxThreads: scanner Workers. Default 5. */
  maxThreads: number;
  /** OnAccessCurlTimeout in ms: bound on each connect/send/receive. Default 5000. */
  timeoutMs: number;
  /** OnAccessRetryAttempts. Default 0. */
  retryAttempts: number;
  /** OnAccessDenyOnError (only effective with prevention). */
  denyOnError: boolean;
  /** OnAccessPrevention: block infected opens (permission events). */
  prevention: boolean;
  /** OnAccessExtraScanning: scan created / moved-in files. */
  extraScanning: boolean;
  /** OnAccessDisableDDD: do not follow new directories. */
  disableDDD: boolean;
}

export interface OnaccConfig {
  /** The file this came from (for messages). */
  file: string;
  /** LocalSocket first (preferred for fd passing), then TCPAddr × TCPSocket. */
  endpoints: ClamdEndpoint[];
  /** StreamMaxLength in bytes; clamd's default 100 MiB when unset; 0 = no limit (clamd reads 0 as its maximum). */
  streamMaxLength: number;
  /** clamd's User: excluded from scanning automatically so clamd never waits on onacc. */
  clamdUser?: string;
  temporaryDirectory?: string;
  /** DatabaseDirectory: watched for signature changes (verdict cache invalidation). */
  databaseDirectory?: string;
  /** QuarantineRetention (onacc's own): quarantined files and their records older than this are deleted. */
  quarantineRetentionMs?: number;
  onAccess: OnAccessOptions;
}
