"""Model builders: convert shipped PyTorch weights to OpenVINO IR. Build time only (imports torch lazily)."""
