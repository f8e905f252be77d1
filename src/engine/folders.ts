// Folders as they come and go, on the reader thread: the directory watcher (dirwatch/) reports new and
// departed directories, and the prevention group's directory marks follow it (a new folder is marked
// before it is listed, so nothing lands in it unseen afterwards). With extra scanning, files that land in
// the tree are handed on for a background scan. Only directories are ever opened here: the reader must
// never open a file it would have to answer for itself.
import { Errno } from "../../ffi/errors.ts";
import { FAN_EVENT_ON_CHILD, FAN_MARK_ADD, FAN_MARK_ONLYDIR, FAN_MARK_REMOVE, fanotifyMarkErrno } from "../../ffi/fanotify.ts";
import { chooseDirectoryWatcher, type DirEvents, type DirectoryWatcher } from "./dirwatch/index.ts";
import type { Counters } from "./counters.ts";
import type { MarkSettings } from "./settings.ts";

export type LogFn = (level: "error" | "warn" | "info" | "verbose", message: string) => void;

export class Folders {
  private readonly watcher: DirectoryWatcher;
  private readonly events: DirEvents;
  private following: boolean;
  private initial = true; // the start-up walk marks every directory, whether or not new ones are followed
  private limitReported = false;
  private closed = false;

  constructor(
    group: number,
    private readonly m: MarkSettings,
    counters: Counters,
    private readonly log: LogFn,
    verbose: boolean,
    /** A file landed (extra scanning only). */
    landed: (path: Uint8Array) => void,
  ) {
    const { watcher, reason } = chooseDirectoryWatcher({
      probePaths: m.includePaths.map((p) => Buffer.from(p)),
      onDirectory: (fd) => {
        if (!m.follow && !this.initial) return;
        const e = fanotifyMarkErrno(group, FAN_MARK_ADD | FAN_MARK_ONLYDIR, m.mask | FAN_EVENT_ON_CHILD, fd, null);
        if (e === Errno.ENOSPC) this.limit("fanotify mark limit reached: raise fs.fanotify.max_user_marks; protecting what is already marked");
      },
      onDirectoryRemoved: (fd) => {
        if (fd >= 0) fanotifyMarkErrno(group, FAN_MARK_REMOVE | FAN_MARK_ONLYDIR, m.mask | FAN_EVENT_ON_CHILD, fd, null);
      },
    });
    this.watcher = watcher;
    this.following = m.follow || m.extraScanning;
    log("verbose", reason);
    const text = (p: Uint8Array) => JSON.stringify(new TextDecoder().decode(p));
    this.events = {
      directoryAdded(path) {
        counters.count("dirsAdded");
        if (verbose) log("verbose", `watching new directory ${text(path)}`);
      },
      directoryRemoved(path) {
        counters.count("dirsRemoved");
        if (verbose) log("verbose", `directory left the watched tree: ${text(path)}`);
      },
      // Without extra scanning nothing is scanned here: every file is scanned when it is opened, and the
      // folder's mark is in place before anyone but its creator can have opened what landed in it.
      fileLanded(path) {
        if (m.extraScanning) landed(path);
      },
      overflow: () => {
        counters.count("overflow");
        log("warn", "directory event queue overflowed: walking the watched trees again");
        this.watcher.resync(this.events);
      },
      limit: (message) => this.limit(message),
      warning: (message) => log("warn", message),
    };
  }

  /**
   * The start-up walk: every include tree is watched and marked. Returns the directories marked and the
   * include paths the watcher could not take (the caller marks those itself, without following them).
   */
  start(): { dirs: number; unwatched: string[] } {
    const excluded = this.m.excludePaths.map((p) => Buffer.from(p));
    let dirs = 0;
    const unwatched: string[] = [];
    for (const root of this.m.includePaths) {
      const n = this.watcher.addTree(Buffer.from(root), excluded, this.events);
      if (n === 0) unwatched.push(root);
      dirs += n;
    }
    this.initial = false;
    if (!this.following) this.close();
    return { dirs, unwatched };
  }

  /** The fd to poll, or -1 when nothing is followed after start-up. */
  get fd(): number {
    return this.following ? this.watcher.fd : -1;
  }

  drain(): void {
    if (this.following) this.watcher.drain(this.events);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.following = false;
    this.watcher.close();
  }

  private limit(message: string): void {
    if (this.limitReported) return;
    this.limitReported = true;
    this.log("error", message);
  }
}
