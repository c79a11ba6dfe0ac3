/**
 * Finding and opening the native helpers of ffi/native/ (built by ffi/native/build.sh). Each
 * helper has its own binding module that calls {@linkcode openNativeLibrary} once; every helper
 * is optional, so anything that prevents its use yields `undefined` and the caller keeps its
 * TypeScript path.
 *
 * @module
 */
import { dirname, join } from "../../lib/io/path.ts";

/** Where to look for a native library. */
export interface NativeLibraryLocation {
  /**
   * Explicit path of the library; when given it is the only candidate.
   *
   * @default {undefined}
   */
  libraryPath?: string;
  /**
   * Path of the running executable: a `deno compile`d kvh looks for the library beside it
   * first, then in `ffi/native/build/` of this checkout.
   *
   * @default {Deno.execPath()}
   */
  execPath?: string;
}

/**
 * Where a library is looked for, in order: `libraryPath` alone when given; otherwise beside the
 * executable, then `ffi/native/build/` of this checkout.
 *
 * @param name The library's file name, e.g. `libkvh_hash.so`.
 * @param options Explicit path and executable path.
 * @returns Candidate paths.
 */
export function nativeLibraryCandidates(
  name: string,
  options: NativeLibraryLocation = {},
): string[] {
  if (options.libraryPath !== undefined) return [options.libraryPath];
  const beside = join(dirname(options.execPath ?? Deno.execPath()), name);
  // Not node:url's fileURLToPath: loading node:url costs ~0.1 s of every kvh command's start.
  const built = decodeURIComponent(new URL(`build/${name}`, import.meta.url).pathname);
  return [beside, built];
}

function granted(name: "ffi" | "read"): boolean {
  return Deno.permissions.querySync({ name }).state === "granted";
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * Opens a native library, or returns `undefined` when it cannot be used: no `ffi` or `read`
 * permission (checked first, so nothing prompts), no library, a library that fails to load, or
 * one whose `abiSymbol` does not return `abiVersion`. The library is never closed by callers:
 * it lives as long as the process.
 *
 * @param name The library's file name.
 * @param symbols Its symbols, including `abiSymbol` (no parameters, `u32` result).
 * @param abi The ABI-version symbol and the version the binding was written against.
 * @param location Where to look.
 * @returns The opened library, or `undefined`.
 */
export function openNativeLibrary<S extends Deno.ForeignLibraryInterface>(
  name: string,
  symbols: S,
  abi: { symbol: keyof S & string; version: number },
  location: NativeLibraryLocation = {},
): Deno.DynamicLibrary<S> | undefined {
  if (!granted("ffi") || !granted("read")) return undefined;
  const path = nativeLibraryCandidates(name, location).find(isFile);
  if (path === undefined) return undefined;
  let library: Deno.DynamicLibrary<S>;
  try {
    library = Deno.dlopen(path, symbols);
  } catch {
    return undefined;
  }
  const version = (library.symbols[abi.symbol] as unknown as () => number)();
  if (version !== abi.version) {
    library.close();
    return undefined;
  }
  return library;
}
