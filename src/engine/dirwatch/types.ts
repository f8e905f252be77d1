// The directory-watcher contract: what "dynamic directory determination" (DDD) and extra scanning need
// from the kernel, independent of whether fanotify FID events or inotify deliver it.

/** What the watcher tells its owner while draining events. Paths are raw bytes (names need not be UTF-8). */
export interface DirEvents {
  /** A directory appeared (created or moved in) under a watched tree; it is already watched. */
  directoryAdded(path: Uint8Array): void;
  /**
   * A directory left the watched trees (deleted, moved out, or moved into an excluded directory). Called once
   * for the top of the departed subtree; the watcher has already dropped its own watches for all of it.
   */
  directoryRemoved(path: Uint8Array): void;
  /** A watched directory was renamed or moved within the watched trees; its watches stay (they follow the inode). */
  directoryMoved?(from: Uint8Array, to: Uint8Array): void;
  /**
   * A file landed in a watched directory: closed after writing, moved in, or created (also: found inside a
   * directory that just appeared). Not checked to be a regular file, and it may be gone already: open it
   * with O_NONBLOCK|O_NOFOLLOW and fstat before scanning; "created" files are often still empty. Reported
   * after the drain's directory events, once per path per drain, with the most telling reason
   * (close-write > moved-to > created).
   */
  fileLanded(path: Uint8Array, why: "close-write" | "moved-to" | "created"): void;
  /** The kernel queue overflowed (FAN_Q_OVERFLOW / IN_Q_OVERFLOW): events were lost; call resync(). */
  overflow(): void;
  /** A watch or mark limit was hit (ENOSPC / EMFILE); the message names the sysctl to raise. Once per watcher. */
  limit(message: string): void;
  /** A directory could not be watched for another reason (EACCES, unsupported filesystem, ...). */
  warning?(message: string): void;
}

/**
 * fanotify: one FID mark per directory (Linux 5.9+). fanotify-fs: one FAN_MARK_FILESYSTEM mark per
 * filesystem, flat start-up (Linux 6.0+). inotify: one watch per directory (any kernel).
 */
export type WatcherKind = "fanotify" | "fanotify-fs" | "inotify";

export interface DirectoryWatcher {
  readonly kind: WatcherKind;
  /** One line for --verbose, e.g. "fanotify directory-entry events (FAN_REPORT_DFID_NAME, unlimited queue)". */
  readonly description: string;
  /** The fd to poll for readiness (POLLIN). */
  readonly fd: number;
  /**
   * Watches `dir` and, recursively, every directory below it except the excluded ones (absolute paths;
   * also applied to directories that appear later). Marks each directory before listing it. Returns how
   * many directories were newly watched. Limits and other problems go to `events` when given, else to
   * the next drain().
   */
  addTree(dir: Uint8Array, excluded: Uint8Array[], events?: DirEvents): number;
  /**
   * Stops watching the tree whose root is `dir`, or the subtree at `dir` if it lies inside a tree (it then
   * counts as excluded from that tree).
   */
  removeTree(dir: Uint8Array): void;
  /** Drains pending events without blocking, calling `events`; returns how many kernel events were handled. */
  drain(events: DirEvents): number;
  /**
   * Walks every watched tree again after an overflow: watches directories that appeared, follows ones that
   * moved, drops ones that left. Files inside newly found directories are reported as "created".
   */
  resync(events: DirEvents): void;
  /** How many directories are watched (one watch or mark each). */
  watchCount(): number;
  /** Every watched directory path (tests and diagnostics; allocates). */
  watchedPaths(): Uint8Array[];
  close(): void;
}

/** Hooks for the owner's own per-directory work (e.g. the prevention group's FAN_OPEN_PERM marks). */
export interface WatcherHooks {
  /**
   * Called for every directory the watcher starts watching (start-up walk, new and moved-in directories,
   * resync), after its own mark and before the directory is listed, with an open O_DIRECTORY fd (closed
   * after the call). Mark here and nothing that lands in the directory falls between mark and listing.
   */
  onDirectory?(fd: number, path: Uint8Array): void;
  /**
   * Called for every directory of a departed subtree. `fd` is an open O_DIRECTORY fd when the directory
   * still exists elsewhere (fanotify: reopened by file handle) so marks can be removed from it; -1 when it
   * was deleted (its marks died with it) or cannot be reached (inotify keeps no handles).
   */
  onDirectoryRemoved?(fd: number, path: Uint8Array): void;
}

export interface WatcherOptions extends WatcherHooks {
  /**
   * Use this implementation if the kernel and filesystems support it (default: fanotify-fs). Falls back
   * fanotify-fs → fanotify → inotify.
   */
  prefer?: WatcherKind;
  /**
   * Directories the watcher will be asked to watch: fanotify is probed on each (a filesystem without file
   * handles cannot take FID marks) and inotify is used when any refuses.
   */
  probePaths?: Uint8Array[];
  /**
   * fanotify only: FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS (default true; needs CAP_SYS_ADMIN). false keeps
   * the kernel's bounds (fs.fanotify.max_queued_events, max_user_marks): the queue can overflow and marks
   * can run out — for tests of those paths, and for running without CAP_SYS_ADMIN.
   */
  unlimited?: boolean;
}
