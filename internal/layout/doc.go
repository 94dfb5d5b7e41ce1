// Package layout holds no code. Its test checks, with go list, the import
// rules that make the folders follow the data (README, "Layout"): the data
// model imports nothing of ours, the consumer knows no sink or pipeline, no
// sink knows the pipeline, the test environments stay out of the product,
// and the worker binary links no testing.
package layout
