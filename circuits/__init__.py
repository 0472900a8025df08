"""Networks built from :mod:`neurons`: microcircuits, layers, spiking burst-dependent plasticity."""
