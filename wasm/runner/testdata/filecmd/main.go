// Command filecmd reads a file: its module imports path_open, which a
// command may not.
package main

import "os"

func main() {
	b, _ := os.ReadFile("/etc/passwd")
	os.Stdout.Write(b)
}
