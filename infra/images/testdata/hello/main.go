// Command hello is a tiny main the image tests compile to a static binary.
package main

import "fmt"

func main() { fmt.Println("hello from keyguard") }
