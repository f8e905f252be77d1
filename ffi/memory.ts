// Handing memory back: the pages of onacc's own executable that only start-up touched (the Bun runtime is
// most of a 100 MiB file, and starting touches 40 MiB of it). madvise(MADV_PAGEOUT) (Linux 5.4+) drops them
// from onacc's resident set; they are clean copies of the file, read back from the page cache (or the
// disk) if ever needed again, so nothing is lost — the kernel would reclaim them under memory pressure anyway.
import { readlinkSync } from "node:fs";
import { libc } from "./libc.ts";
import { readProcText } from "./procfs.ts";

const MADV_PAGEOUT = 21;

/** Pages out every mapping of the running executable; returns the bytes advised (0 where unsupported). */
export function pageOutExecutable(): number {
  let exe: string;
  try {
    exe = readlinkSync("/proc/self/exe");
  } catch {
    return 0;
  }
  const maps = readProcText("self", "maps") ?? "";
  let bytes = 0;
  for (const line of maps.split("\n")) {
    // "start-end perms offset dev inode   pathname"
    const path = line.slice(line.indexOf("/"));
    if (!line.includes("/") || path !== exe) continue;
    const [range] = line.split(" ", 1);
    const [start, end] = range!.split("-").map((h) => Number.parseInt(h, 16));
    if (start === undefined || end === undefined || !(end > start)) continue;
    if (libc.madvise(start, end - start, MADV_PAGEOUT) === 0) bytes += end - start;
  }
  return bytes;
}
