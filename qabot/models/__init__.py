"""The model seams: the embedding model and its offline provisioning. Nothing else loads a model."""
