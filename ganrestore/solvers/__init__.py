"""Solvers of the classical baselines (Yeh et al. 2018's TV, low-rank and sparse rows).

* :mod:`~ganrestore.solvers.tv`: isotropic (vectorial or per-channel) TV with a
  box constraint, penalised or constrained, by Chambolle-Pock.
* :mod:`~ganrestore.solvers.lowrank`: truncated nuclear norm (Hu et al. 2013) per
  colour channel, APGL / ADMM; rank 0 is the nuclear norm.
* :mod:`~ganrestore.solvers.sparse`: batched OMP, K-SVD and patch-sparse
  restoration (Elad & Aharon 2006).
* :mod:`~ganrestore.solvers.common`: closed-form / CG resolvents
  ``(A^T A + rho I)^{-1}``, stopping rules, the grey-image restriction.
* :mod:`~ganrestore.solvers.reference`: the same convex problems in cvxpy (the
  tests' and benchmark's oracle; cvxpy is imported lazily).

Everything works through ``op.A``, ``op.A_adjoint`` and ``op.A_dagger`` and is
batched over images; operators are special-cased only for speed.
"""
