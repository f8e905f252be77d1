// The largest files and longest functions of src/ and ffi/ (lines from first to last), for the closing note
// of a clean-up: run by hand, before and after. `bun scripts/sizes.ts [ROOT] [N]`: ROOT holds src/ and ffi/
// (default: this checkout; e.g. an unpacked `git archive main src ffi`), N rows each (default 15).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

const root = process.argv[2] ?? new URL("..", import.meta.url).pathname;
const top = Number(process.argv[3] ?? 15);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

const files = ["src", "ffi"].flatMap((d) => sources(join(root, d)));
const fileRows: [string, number][] = [];
const functionRows: [string, number][] = [];
let total = 0;
for (const file of files) {
  const text = readFileSync(file, "utf8");
  const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
  total += lines;
  fileRows.push([relative(root, file), lines]);
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ESNext, true);
  const visit = (node: ts.Node, owner: string) => {
    let name: string | undefined;
    if (ts.isFunctionDeclaration(node) && node.name) name = node.name.text;
    else if ((ts.isMethodDeclaration(node) || ts.isGetAccessor(node)) && node.name) name = `${owner}.${node.name.getText(sf)}`;
    else if (ts.isConstructorDeclaration(node)) name = `${owner}.constructor`;
    else if ((ts.isArrowFunction(node) || ts.isFunctionExpression(node)) && ts.isVariableDeclaration(node.parent)) name = node.parent.name.getText(sf);
    if (name !== undefined && "body" in node && node.body) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      functionRows.push([`${relative(root, file)}:${first + 1} ${name}`, last - first + 1]);
    }
    const inside = ts.isClassDeclaration(node) && node.name ? node.name.text : owner;
    ts.forEachChild(node, (child) => visit(child, inside));
  };
  visit(sf, "");
}
const longestFirst = (a: [string, number], b: [string, number]) => b[1] - a[1];
console.log(`src+ffi: ${files.length} files, ${total} lines`);
console.log("largest files:");
for (const [what, n] of fileRows.sort(longestFirst).slice(0, top)) console.log(`  ${String(n).padStart(5)} ${what}`);
console.log("longest functions:");
for (const [what, n] of functionRows.sort(longestFirst).slice(0, top)) console.log(`  ${String(n).padStart(5)} ${what}`);
