"""Built-in datasets: csv, folder, filename, phantom."""
