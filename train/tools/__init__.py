"""Commands that work on any run or experiment: reproduce (the results registry), report (tables and
curves over runs), sample (text from a trained LM), bench (step time, throughput, MFU), time_by_op
(a profile's longest ops), gpu (`make gpu`: the GPU tests and benchmarks in one command)."""
