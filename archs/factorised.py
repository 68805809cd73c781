"""Low-rank factorised convolutions: what the ``rank=`` key of the conv families builds.

Why: sketched and tensor-decomposed networks (Kasiviswanathan et al., "Deep Neural Network
Approximation using Tensor Sketching"; Kim et al. 2016's Tucker-2 compression) replace one big
convolution by a chain of small ones with fewer parameters and FLOPs. Whether a runtime's
advantage survives that is a question about kernels, so the families offer it as one key.

The scheme (Tucker-2 along the channel modes): a dense ``k x k`` convolution ``cin -> cout``
with stride ``s`` and padding ``p`` becomes, with nothing between the three,

1. a 1x1 convolution ``cin -> r`` (the reduction, at the input's resolution),
2. a ``k x k`` convolution ``r -> r`` with the original stride and padding (the core),
3. a 1x1 convolution ``r -> cout`` (the expansion),

all without bias; the BatchNorm and activation that followed the original convolution follow
the expansion. The chain computes a convolution whose weight has rank at most ``r`` along
both channel modes, so it approximates the original exactly in that family of weights. The
reduction runs before the stride because subsampling a 1x1 convolution's output equals
convolving the subsampled input only for the 1x1 itself; the strided core needs the full map.

Counts (what ``archs.profile`` reports; ``tests/test_axes_counts.py`` checks them by hand):
``params = cin*r + r*r*k*k + r*cout`` against ``cin*cout*k*k``; multiply-adds
``Hi*Wi*cin*r + Ho*Wo*(r*r*k*k + r*cout)`` against ``Ho*Wo*cin*cout*k*k``.

Where it applies: ``rank=0`` (the default) leaves every convolution whole. A rank ``r`` applies
to every dense (ungrouped) convolution with a kernel larger than 1x1 whose input *and* output
both have more than ``r`` channels; any other convolution (1x1, depthwise, or one that is
already of rank <= r) stays whole, since factorising it would add work without lowering rank.
"""

from __future__ import annotations

from torch import nn

RANK_DOC = ("factorise each dense kxk conv as 1x1 to rank r, kxk at r, 1x1 back "
            "(0: whole; convs with <= r in or out channels stay whole)")


def effective_rank(rank: int, cin: int, cout: int, kernel: int, groups: int = 1) -> int:
    """The rank a convolution is built at: ``rank``, or 0 (whole) where it does not apply."""
    if rank > 0 and kernel > 1 and groups == 1 and rank < min(cin, cout):
        return rank
    return 0


class Factorised(nn.Sequential):
    """The reduction, core and expansion convolutions of one factorised convolution."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int, rank: int):
        super().__init__(
            nn.Conv2d(cin, rank, 1, bias=False),
            nn.Conv2d(rank, rank, kernel, stride, padding, bias=False),
            nn.Conv2d(rank, cout, 1, bias=False),
        )
        self.rank = rank


def conv(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0, *,
         groups: int = 1, rank: int = 0) -> nn.Module:
    """A bias-free convolution, factorised at ``rank`` where ``effective_rank`` says so."""
    r = effective_rank(rank, cin, cout, kernel, groups)
    if r:
        return Factorised(cin, cout, kernel, stride, padding, r)
    return nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)


def conv_params(cin: int, cout: int, kernel: int, rank: int = 0) -> int:
    """Weights of ``conv(cin, cout, kernel, rank=rank)`` (dense, no bias)."""
    r = effective_rank(rank, cin, cout, kernel)
    if not r:
        return cin * cout * kernel * kernel
    return cin * r + r * r * kernel * kernel + r * cout


def conv_macs(cin: int, cout: int, kernel: int, rank: int, in_hw: int, out_hw: int) -> int:
    """Multiply-adds of that convolution on an ``in_hw``-square map giving ``out_hw``-square."""
    r = effective_rank(rank, cin, cout, kernel)
    if not r:
        return out_hw * out_hw * cin * cout * kernel * kernel
    return in_hw * in_hw * cin * r + out_hw * out_hw * (r * r * kernel * kernel + r * cout)
