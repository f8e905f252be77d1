// Which file systems onacc may trust with a cached verdict, and which the fanotify reader may stat. Local
// disk file systems raise an fsnotify event for every write made through this kernel; network and FUSE
// file systems change behind its back (another host, a daemon), and their stat() may wait on a server that
// hangs. Decided by the mount an event's fd was opened through (statx's mnt_id), from /proc mountinfo:
// no call ever reaches the file system itself.
import { readProcText } from "../../ffi/procfs.ts";

/** File system types (mountinfo's fstype) whose writes all pass through this kernel's VFS. */
export const LOCAL_FS_TYPES: ReadonlySet<string> = new Set([
  "ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "f2fs", "zfs", "vfat", "msdos", "exfat", "jfs",
  "reiserfs", "ntfs3", "hfsplus", "bcachefs", "nilfs2",
  // Read-only images: they never change at all.
  "squashfs", "erofs", "iso9660",
]);

/** Mount ID → file system type, from one mountinfo text ("ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE ..."). */
export function parseMountTypes(mountinfo: string, into = new Map<number, string>()): Map<number, string> {
  for (const line of mountinfo.split("\n")) {
    if (!line) continue;
    const id = Number(line.slice(0, line.indexOf(" ")));
    const sep = line.indexOf(" - ");
    if (!Number.isFinite(id) || sep < 0) continue;
    const rest = line.slice(sep + 3);
    into.set(id, rest.slice(0, rest.indexOf(" ")));
  }
  return into;
}

const UNKNOWN_RETRY_MS = 1000;

/** Per-thread mount table, refreshed when an unknown mount shows up. */
export class FsLocality {
  private readonly types = new Map<number, string>();
  private readonly unknownUntil = new Map<number, number>();

  /**
   * True for a mount of a local file system. A mount onacc cannot see (another mount namespace) is looked
   * up in the opener's namespace (`pid`); one that stays unknown counts as not local.
   */
  isLocal(mntId: number, pid: number, now: number): boolean {
    if (mntId <= 0) return false;
    let type = this.types.get(mntId);
    if (type === undefined) {
      const retryAt = this.unknownUntil.get(mntId);
      if (retryAt !== undefined && now < retryAt) return false;
      this.refresh("self");
      if (!this.types.has(mntId) && pid > 0) this.refresh(pid);
      type = this.types.get(mntId);
      if (type === undefined) {
        if (this.unknownUntil.size > 4096) this.unknownUntil.clear();
        this.unknownUntil.set(mntId, now + UNKNOWN_RETRY_MS);
        return false;
      }
    }
    return LOCAL_FS_TYPES.has(type);
  }

  private refresh(who: number | "self"): void {
    const text = readProcText(who, "mountinfo");
    if (text !== undefined) parseMountTypes(text, this.types);
  }
}
