// Package levers measures the four levers that bring AI cost down — model
// routing, prompt and context engineering, caching, budget enforcement — as
// savings a team can act on: what-if re-pricing of real traffic on other
// models, per-prompt-version and long-context analyses, cache hit rates and
// wasted cache writes, anomalies in the drivers of spend, and the quarter's
// change in cost per outcome decomposed by lever.
//
// Analyses read ClickHouse through the documented views (schemas/clickhouse)
// and price with the processor's engine (internal/pricing); arithmetic that
// divides money is exact (internal/exact) and rounds only when presented.
package levers
