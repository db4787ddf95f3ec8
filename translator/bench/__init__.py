"""Benchmarks behind `translator bench`; nothing in the library imports them.

decode     decoding speed and exactness on a split (`translator bench decode`)
train      training throughput of the batching and compilation methods (`translator bench train`)
serve      throughput and latency of `translator serve`, batching on and off (`translator bench serve`)
reference  the uncached greedy decoder (the TF tutorial's way), the reference for cached search
machine    the description of the machine written beside every figure
"""
