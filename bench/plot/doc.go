// Package plot draws handsup-bench's figures with gonum.org/v1/plot: the
// distribution of tick times of one or more runs (a cumulative
// distribution on a log scale, with the 20 ms budget marked) and, for a
// sweep over audience sizes, the CPU per tick and the median tick time
// against the listeners per room. Write renders a Figure to PNG or SVG by
// the file's extension; the fonts are gonum's own, so nothing is needed
// from the system.
package plot
