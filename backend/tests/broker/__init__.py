"""Tests of the brokers and shared stores: the contract on memory, Redis, Cluster, Sentinel."""
