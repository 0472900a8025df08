"""The spiking stage of the experiments: equivalence and energy reports of a converted model."""
