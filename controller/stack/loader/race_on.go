//go:build race

package loader

const raceBuild = true
