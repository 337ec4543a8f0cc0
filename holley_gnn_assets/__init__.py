"""holley-gnn: does a GNN over the vehicle-fitment graph beat the SQL popularity ranking?"""

__version__ = "0.1.0"
