//go:build !race

package loader

const raceBuild = false
