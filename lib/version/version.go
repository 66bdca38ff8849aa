// Package version holds the build's version, set with -ldflags
// "-X flotilla.dev/lib/version.Version=...".
package version

// Version of Flotilla.
var Version = "0.1.0-dev"

// Commit the binaries were built from, when known.
var Commit = ""

// CRIVersion is the CRI API version Flotilla implements.
const CRIVersion = "v1"
