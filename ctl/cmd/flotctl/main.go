// Command flotctl is Flotilla's admin CLI (placeholder).
package main

func main() {}
