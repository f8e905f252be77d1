// clamd's TemporaryDirectory is never watched, as in clamonacc: clamd writes the temporary files of its
// scans there. Include paths and watch-list entries equal to it or inside it are dropped with a notice,
// and it joins the excluded paths, so folders created inside it are not followed either.
import { isUnder } from "../engine/paths.ts";

/** The notice for a path to watch that is clamd's TemporaryDirectory or lies inside it; undefined otherwise. */
export function temporaryDirectoryNotice(what: string, path: string, temporaryDirectory: string | undefined): string | undefined {
  if (temporaryDirectory === undefined || !isUnder(path, temporaryDirectory)) return undefined;
  const where = path === temporaryDirectory ? "it is" : "it lies inside";
  return `${what} "${path}" is not watched: ${where} clamd's TemporaryDirectory "${temporaryDirectory}", where clamd writes the temporary files of its scans`;
}

/** The excluded paths with the TemporaryDirectory added (unless an excluded path already holds it). */
export function excludingTemporaryDirectory(excludePaths: string[], temporaryDirectory: string | undefined): string[] {
  if (temporaryDirectory === undefined || excludePaths.some((p) => isUnder(temporaryDirectory, p))) return excludePaths;
  return [...excludePaths, temporaryDirectory];
}
