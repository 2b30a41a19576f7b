"""What every stage process loads: the network registry, params.yaml and
toolchain.yaml checks, atomic writes, errors and console output. No torch.

dvc.yaml lists this folder as a dep of every stage, so a change here reruns
them all; keep network- and precision-specific code out.
"""
