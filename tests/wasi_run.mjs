// tests/wasi_run.mjs - runs a wasm32-wasi program under Node's WASI (make wasm):
//   node tests/wasi_run.mjs PROGRAM.wasm [ARGS...]
// The current directory is the guest's "/" (so relative paths such as tests/data resolve as on
// the host), /tmp is /tmp. Exit status: the program's.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import process from 'node:process';

const [file, ...args] = process.argv.slice(2);
if (!file) { console.error('usage: node tests/wasi_run.mjs PROGRAM.wasm [ARGS...]'); process.exit(2); }
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env: process.env, returnOnExit: true,
                        preopens: { '/': process.cwd(), '/tmp': '/tmp' } });
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
const code = wasi.start(instance) ?? 0;
// Node 20 has crashed (SIGSEGV) after long WASI runs had returned, in its own teardown: this line
// tells make wasm what the program itself returned
console.error(`wasi_run: exit ${code}`);
process.exit(code);
