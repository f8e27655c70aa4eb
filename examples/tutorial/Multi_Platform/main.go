package main

import "fmt"

func main() {
	fmt.Println("DevOps is the 🐐")
}
