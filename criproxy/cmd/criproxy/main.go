// Command criproxy serves the CRI socket (placeholder).
package main

func main() {}
