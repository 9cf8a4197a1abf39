"""Networks: the tanh-Gaussian distribution, policies, critics and their layers."""
