// Package faults is the sidecar's fault battery and soak: the executor binary, as child processes, against
// the real test broker and the test model (cmd/testmodel) as a process, through the faults production
// brings — SIGKILLs, broker restarts on the same data, a model stopped or hung, replicas joining and
// leaving, SIGTERM twice, a topic refusing writes. Every scenario counts each request's answers and error
// records, read back from the beginning of the topics, and watches that every assigned partition with lag
// keeps moving. Each prints one line:
//
//	records in, answered, error records, lost, duplicates, recovery time, stalls
//
// The tests are opt-in, since they take minutes (README: "Faults and soak"):
//
//	make faults                                     the long battery (go test ./test/faults -faults=long)
//	go test ./test/faults -run TestFaults -args -faults=short    the short one, as the test command runs it
//	make soak                                       30 minutes at half the maximum throughput, faults included
package faults
