// wasi-run.mjs — runs a WASI (preview 1) program built for the wasm32 target
// (docs/targets.md) under Node.js's node:wasi, with the same command line as
// the native program:
//
//   node --no-warnings runtime/wasi-run.mjs PROG.wasm --weights model.gguf -p "..."
//
// `gemmac targets` names this command as the target's emulator.  The host's
// "/" is preopened as "/" (the program sees the files a native one would)
// and PWD is the directory node started in, which the runtime moves to
// first (runtime/wasi.c), so relative paths mean what they mean natively.
// The exit status is the program's; a trap (out of bounds, unreachable)
// prints its stack and exits 1.
import { readFile } from 'node:fs/promises';
import process from 'node:process';
import { WASI } from 'node:wasi';

const [prog, ...args] = process.argv.slice(2);
if (!prog) {
    process.stderr.write('usage: node wasi-run.mjs PROG.wasm [ARGS...]\n');
    process.exit(2);
}
const wasi = new WASI({
    version: 'preview1',
    args: [prog, ...args],
    env: { ...process.env, PWD: process.cwd() },
    preopens: { '/': '/' },
    returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(prog));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
