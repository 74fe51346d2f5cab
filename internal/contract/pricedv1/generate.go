// Package pricedv1 is the Go of schemas/proto/tokenmeter/priced/v1/priced.proto,
// generated: edit the .proto and run `make generate`, never this package.
package pricedv1

//go:generate ../../../schemas/proto/generate.sh
