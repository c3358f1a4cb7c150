// Package charts embeds liftoff's Helm charts, so the CLI deploys the chart it
// was built with, whatever the working directory holds.
package charts

import "embed"

// Shortener is the shortener chart; `all:` keeps _helpers.tpl.
//
//go:embed all:shortener
var Shortener embed.FS
