// The watched directories as a tree of nodes keyed by kernel identity (file handle or inotify wd): a node
// holds its name, not its path, so a rename moves one node and every path below follows for free.
// Names and paths are latin1 strings here: one char per byte, so any byte name round-trips exactly.

/** fanotify: fs index + handle type + handle bytes; inotify: the watch descriptor. */
export type NodeKey = string | number;

export interface RootInfo {
  /** Excluded directories (normalized): nothing at or below them is watched. */
  excluded: string[];
}

export interface DirNode {
  key: NodeKey;
  /** Entry name in the parent; for a root, its whole path. */
  name: string;
  parent: DirNode | null;
  /** Subdirectories by name; null while there are none (most directories are leaves). */
  children: Map<string, DirNode> | null;
  /** Set on tree roots only. */
  root: RootInfo | null;
}

/** Raw path bytes ↔ latin1 string, exact for every byte value. */
export function bytesToText(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}
export function textToBytes(text: string): Buffer {
  return Buffer.from(text, "latin1");
}

/** Joins a directory path and an entry name ("/" + "x" is "/x", not "//x"). */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/** Strips trailing slashes (but keeps "/"). */
export function normalizeDir(path: string): string {
  let p = path;
  while (p.length > 1 && p.endsWith("/")) p = p.slice(0, -1);
  return p;
}

export class DirTree {
  private readonly byKey = new Map<NodeKey, DirNode>();
  private readonly roots = new Set<DirNode>();

  get size(): number {
    return this.byKey.size;
  }

  get(key: NodeKey): DirNode | undefined {
    return this.byKey.get(key);
  }

  rootNodes(): DirNode[] {
    return [...this.roots];
  }

  addRoot(key: NodeKey, path: string, excluded: string[]): DirNode {
    const node: DirNode = { key, name: path, parent: null, children: null, root: { excluded } };
    this.byKey.set(key, node);
    this.roots.add(node);
    return node;
  }

  addChild(key: NodeKey, parent: DirNode, name: string): DirNode {
    const node: DirNode = { key, name, parent: null, children: null, root: null };
    this.byKey.set(key, node);
    this.attach(node, parent, name);
    return node;
  }

  /** Hangs a detached node (with its subtree) under `parent` as `name`. */
  attach(node: DirNode, parent: DirNode, name: string): void {
    node.parent = parent;
    node.name = name;
    (parent.children ??= new Map()).set(name, node);
  }

  /** Takes `node` (with its subtree) out of the tree; it keeps its key until dropped. */
  detach(node: DirNode): void {
    if (node.root) {
      this.roots.delete(node);
      node.root = null;
      return;
    }
    const p = node.parent;
    if (p?.children?.get(node.name) === node) {
      p.children.delete(node.name);
      if (p.children.size === 0) p.children = null;
    }
    node.parent = null;
  }

  /** Forgets `node` and everything below it; calls `visit` for each (top first) with its old path. */
  drop(node: DirNode, topPath: string, visit: (n: DirNode, path: string) => void): void {
    const stack: [DirNode, string][] = [[node, topPath]];
    while (stack.length > 0) {
      const [n, path] = stack.pop()!;
      if (this.byKey.get(n.key) === n) this.byKey.delete(n.key);
      visit(n, path);
      if (n.children) for (const [name, c] of n.children) stack.push([c, joinPath(path, name)]);
      n.children = null;
    }
  }

  /** The node's path, or null when it hangs below a detached node (it left the tree). */
  pathOf(node: DirNode): string | null {
    if (node.root) return node.name;
    const names: string[] = [];
    let n: DirNode | null = node;
    while (n && !n.root) {
      names.push(n.name);
      n = n.parent;
    }
    if (!n) return null;
    let path = n.name;
    for (let i = names.length - 1; i >= 0; i--) path = joinPath(path, names[i]!);
    return path;
  }

  /** The root a node hangs below, or null when detached. */
  rootOf(node: DirNode): DirNode | null {
    let n: DirNode | null = node;
    while (n && !n.root) n = n.parent;
    return n;
  }

  /** The watched node at exactly `path`, if any. */
  find(path: string): DirNode | undefined {
    const p = normalizeDir(path);
    for (const root of this.roots) {
      if (p === root.name) return root;
      const prefix = root.name.endsWith("/") ? root.name : `${root.name}/`;
      if (!p.startsWith(prefix)) continue;
      let n: DirNode | undefined = root;
      for (const part of p.slice(prefix.length).split("/")) {
        if (part === "") continue;
        n = n.children?.get(part);
        if (!n) break;
      }
      if (n) return n;
    }
    return undefined;
  }

  /** Every attached node with its path. */
  forEach(visit: (n: DirNode, path: string) => void): void {
    for (const root of this.roots) {
      const stack: [DirNode, string][] = [[root, root.name]];
      while (stack.length > 0) {
        const [n, path] = stack.pop()!;
        visit(n, path);
        if (n.children) for (const [name, c] of n.children) stack.push([c, joinPath(path, name)]);
      }
    }
  }

  clear(): void {
    this.byKey.clear();
    this.roots.clear();
  }
}

/** The excluded directories of a tree, as normalized text paths for isUnderAny() (src/engine/paths.ts). */
export function excludedDirs(excluded: readonly Uint8Array[]): string[] {
  return excluded.map((x) => normalizeDir(bytesToText(x)));
}
