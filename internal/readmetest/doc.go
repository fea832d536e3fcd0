// Package readmetest runs the commands of the repository's README.md
// against a fresh build of gitmesh, so the README cannot rot: every
// command in a ```sh or ```console block is either run here (in a temporary
// copy of the repository's examples, with the built gitmesh first on PATH)
// or named in the table below with the reason it cannot run in a test. A
// console block's output under a command is compared with what the command
// prints, after normalizing hashes, times and versions; "..." in the README
// stands for any number of lines.
package readmetest
