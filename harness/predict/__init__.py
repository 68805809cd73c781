"""Predict a network's latency on each backend, and the speed-up, from kernel measurements.

nn-Meter's idea (Zhang et al., MobiSys 2021) on this machine's own cells: a network is the sum of
the kernels its runtime runs plus a per-inference overhead. ``units`` lists a model's units with
their shapes; ``fusion`` groups them into the kernels a backend really runs (OpenVINO's runtime
graph; eager PyTorch fuses nothing); ``model`` fits one small linear model per kernel kind on
kernel cells and predicts with an interval; ``score`` states the accuracy as nn-Meter does.
"""
