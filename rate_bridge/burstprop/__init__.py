"""The torch side of burst propagation (Payeur et al. 2021): functional equations, layers, activations
(including the calibrated ones, from transfer fits given as plain numbers) and the three models.

* :mod:`.functional`: the pointwise equations (burst probabilities and rates, eqs. 3-7), ``BurstParams``,
  ``LayerState``, the ``Activation`` type;
* :mod:`.activations`: the registry of transfer functions and h(e); :mod:`.calibrated`: the spiking
  cells' measured transfer functions (activations read it, never the reverse);
* :mod:`.routing`: ``BurstPass``, which carries ``Y bbar`` between layers;
* :mod:`.autograd`: the burstprop backward of dense and convolutional layers (eq. 8 into ``.grad``);
* :mod:`.layers`: ``BurstLinear`` / ``BurstConv2d``, thin ``nn.Module`` wrappers;
* :mod:`.models`: MBURST / Multimodal / Unimodal (``AVMaskNet``, ``ModelConfig``, ``build_model``).

Nothing here imports Brian2, :mod:`circuits` or the Brian2 modules of :mod:`neurons` (import-linter
contract in ``pyproject.toml``).
"""
