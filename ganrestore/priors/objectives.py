"""The GAN objectives :func:`ganrestore.priors.train.train_gan` offers for the DCGAN-64.

Written with the discriminator's raw score ``C(x)`` (``D`` returns one number
per image; ``s`` = the logistic sigmoid, ``BCE(l, 1) = -log s(l)``), on a batch
of real images ``x_i`` and fakes ``x~_i = G(z_i)``, means over the batch:

``ns`` -- the DCGAN game (Goodfellow et al., NeurIPS 2014; Radford et al., ICLR
2016) with the non-saturating generator loss; ``C`` is the logit of P(real)::

    L_D = BCE(C(x), 1) + BCE(C(x~), 0) = -log s(C(x)) - log(1 - s(C(x~)))
    L_G = BCE(C(x~), 1)               = -log s(C(x~))

``wgan_gp`` -- WGAN with gradient penalty (Gulrajani et al., NeurIPS 2017,
Algorithm 1; the survey, seed 002, "WGAN-GP"); ``C`` is a critic::

    L_D = E[C(x~)] - E[C(x)] + lambda E[(||grad_x^ C(x^)||_2 - 1)^2],
          x^_i = eps_i x_i + (1 - eps_i) x~_i,  eps_i ~ U[0, 1]   (lambda = 10)
    L_G = -E[C(x~)]

  The paper's defaults are Adam with lr 1e-4, betas (0, 0.9) and
  ``n_critic = 5`` critic steps per generator step (train_gan's ``lr``,
  ``beta1``, ``beta2``, ``n_critic``).  The penalty is taken per sample, so the
  critic must not couple a batch's samples: Gulrajani et al. (Sec. 4, "No
  critic batch normalization") drop batch norm and advise layer normalisation,
  which their code applies (``tflib/ops/layernorm.py``, over C, H, W with
  per-channel scale and offset) -- here ``Discriminator(norm="layer")``, a
  ``GroupNorm`` with one group; batch norm with this loss is refused.

``rsgan`` -- the relativistic standard GAN (Jolicoeur-Martineau, ICLR 2019,
arXiv:1807.00734, 2018; the survey's "Relativistic approach"), the
pair (x_i, x~_i) taken index by index as in the author's code
(AlexiaJM/RelativisticGAN: ``BCE_stable(y_pred - y_pred_fake, y)``)::

    L_D = BCE(C(x) - C(x~), 1) = -E[log s(C(x) - C(x~))]
    L_G = BCE(C(x~) - C(x), 1) = -E[log s(C(x~) - C(x))]

  ``s(C(x) - C(x~))`` is the probability that the real image is more realistic
  than the fake one; ``C`` alone is defined up to an additive constant (a
  "relativistic" score, :data:`ganrestore.priors.D_KINDS`).

One training step (:func:`gan_step`) makes ``n_critic`` discriminator updates,
each on its own (real, z) batch, then one generator update on the last batch's
latents (the fake images of the last critic step, as the DCGAN step has always
done with ``n_critic = 1``); with the generator frozen it makes only the
discriminator updates and reports the generator loss at the discriminator
before its last update.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .dcgan import to_gan, to_unit

#: objective name -> what the discriminator's output is (``Discriminator(output=...)``, D_KINDS)
LOSSES = {"ns": "logit", "wgan_gp": "critic", "rsgan": "relativistic"}
#: the normalisation a discriminator gets with ``d_norm: auto``
AUTO_D_NORM = {"ns": "batch", "wgan_gp": "layer", "rsgan": "batch"}
#: the CSV columns of each objective's training log (after ``step``, ``seconds``)
LOG_FIELDS = {"ns": ["loss_D", "loss_G", "D_real", "D_fake"],
              "rsgan": ["loss_D", "loss_G", "C_real", "C_fake", "P_real_more_real"],
              "wgan_gp": ["loss_D", "loss_G", "C_real", "C_fake", "W", "gp"]}
#: a one-line statement of each objective, recorded in the checkpoint's provenance
DESCRIPTION = {
    "ns": "BCE-with-logits D loss, non-saturating G loss (DCGAN)",
    "wgan_gp": "WGAN-GP (Gulrajani et al. 2017): L_D = E[C(G(z))] - E[C(x)] + lambda E[(||grad C(x^)|| - 1)^2], "
               "x^ = eps x + (1 - eps) G(z), eps ~ U[0, 1]; L_G = -E[C(G(z))]",
    "rsgan": "RSGAN (Jolicoeur-Martineau 2018): L_D = BCE(C(x) - C(G(z)), 1), L_G = BCE(C(G(z)) - C(x), 1)",
}


def _check(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {list(LOSSES)}, got {loss!r}")


def gradient_penalty(D, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``E[(||grad_x^ C(x^)||_2 - 1)^2]`` on ``x^ = eps real + (1 - eps) fake`` (Gulrajani et al. 2017).

    ``eps`` has shape ``(B, 1, 1, 1)``; the gradient is kept in the graph
    (``create_graph``) so that the penalty can be minimised over D's weights.
    ``grad_x^ sum_i C(x^_i)`` is each sample's own gradient only when ``D``
    treats samples independently (no batch norm in training mode)."""
    x_hat = (eps * real + (1.0 - eps) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    return (torch.linalg.vector_norm(grad.flatten(1), dim=1) - 1.0).pow(2).mean()


def discriminator_loss(loss: str, D, real: torch.Tensor, fake: torch.Tensor, gp_lambda: float = 10.0,
                       eps: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """``L_D`` of ``loss`` on (real, fake) (fake detached) and the numbers the training log records."""
    _check(loss)
    fake = fake.detach()
    l_real, l_fake = D(real), D(fake)
    logs = {}
    if loss == "ns":
        out = (F.binary_cross_entropy_with_logits(l_real, torch.ones_like(l_real))
               + F.binary_cross_entropy_with_logits(l_fake, torch.zeros_like(l_fake)))
        logs = {"D_real": torch.sigmoid(l_real).mean(), "D_fake": torch.sigmoid(l_fake).mean()}
    elif loss == "rsgan":
        rel = l_real - l_fake
        out = F.binary_cross_entropy_with_logits(rel, torch.ones_like(rel))
        logs = {"C_real": l_real.mean(), "C_fake": l_fake.mean(), "P_real_more_real": torch.sigmoid(rel).mean()}
    else:
        if eps is None:
            raise ValueError("wgan_gp needs the interpolation weights eps (B, 1, 1, 1)")
        gp = gradient_penalty(D, real, fake, eps)
        w = l_real.mean() - l_fake.mean()
        out = -w + gp_lambda * gp
        logs = {"C_real": l_real.mean(), "C_fake": l_fake.mean(), "W": w, "gp": gp}
    return out, {"l_real": l_real, "l_fake": l_fake, **logs}


def generator_loss(loss: str, l_gen: torch.Tensor, l_real: torch.Tensor | None = None) -> torch.Tensor:
    """``L_G`` of ``loss`` from the discriminator's scores of the fakes (and, for RSGAN, of the reals)."""
    _check(loss)
    if loss == "ns":
        return F.binary_cross_entropy_with_logits(l_gen, torch.ones_like(l_gen))      # non-saturating
    if loss == "rsgan":
        if l_real is None:
            raise ValueError("rsgan's generator loss needs the discriminator's scores of the real batch")
        rel = l_gen - l_real.detach()
        return F.binary_cross_entropy_with_logits(rel, torch.ones_like(rel))
    return -l_gen.mean()


def quantise_u8(x_gan: torch.Tensor) -> torch.Tensor:
    """An image in [-1, 1] rounded to 8 bits, as a stored dataset holds it (no gradient)."""
    return to_gan(torch.round(to_unit(x_gan).clamp(0, 1) * 255) / 255)


def gan_step(G, D, opt_G, opt_D, batches, loss: str = "ns", gp_lambda: float = 10.0,
             eps_generator: torch.Generator | None = None, train_g: bool = True,
             quantise_fake: bool = False) -> dict:
    """One training step: a discriminator update per ``(real, z)`` in ``batches``, then a generator update.

    ``train_g = False`` (a frozen G): fakes computed without gradients and no
    generator update; the logged ``loss_G`` is the generator loss at D before
    its last update.  ``quantise_fake`` (frozen G only) rounds G(z) to 8 bits.
    WGAN-GP's ``eps_i ~ U[0, 1]`` come from ``eps_generator`` (CPU).
    Returns the last discriminator update's log values and ``loss_G``.
    """
    _check(loss)
    if quantise_fake and train_g:
        raise ValueError("quantise_fake rounds G(z) to 8 bits, which has no gradient: only with a frozen G")
    fake = None
    for real, z in batches:
        if train_g:
            fake = G(z)
        else:
            with torch.no_grad():
                fake = G(z)
                if quantise_fake:
                    fake = quantise_u8(fake)
        eps = None
        if loss == "wgan_gp":
            eps = torch.rand(real.shape[0], 1, 1, 1, generator=eps_generator).to(real.device, real.dtype)
        loss_D, logs = discriminator_loss(loss, D, real, fake, gp_lambda, eps)
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
    l_real, l_fake = logs.pop("l_real"), logs.pop("l_fake")
    if train_g:
        l_gen = D(fake)
        l_real_g = None
        if loss == "rsgan":
            with torch.no_grad():
                l_real_g = D(real)
        loss_G = generator_loss(loss, l_gen, l_real_g)
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()
    else:
        with torch.no_grad():
            loss_G = generator_loss(loss, l_fake.detach(), l_real.detach())
    out = {"loss_D": loss_D.item(), "loss_G": loss_G.item()}
    out.update({k: v.item() for k, v in logs.items()})
    return out
