// Package ingest turns what applications send into canonical events
// (event.UsageEvent, event.OutcomeEvent). It is shared by the collector (HTTP
// and OTLP) and by the processor, which reads records applications wrote
// straight to Kafka, so every path validates with the same code.
//
// File map:
//
//	canonical.go  one canonical or provider-native JSON object -> event (DecodeUsage, DecodeOutcome)
//	native.go     provider-native usage objects (OpenAI Chat/Responses, Anthropic, Gemini, Bedrock Converse)
//	body.go       a request body -> items: JSON object/array/stream, NDJSON, CloudEvents structured and batch
//	otlp.go       OTLP spans with GenAI semantic-convention attributes -> usage events
//	provider.go   provider name and service tier normalisation
//
// Nothing here talks to Kafka or HTTP; decoders are pure functions of their
// input and the time given, which makes them easy to table-test and fuzz.
package ingest
