"""MLS-MPM bodies: elastic, elastoplastic (von Mises) and Newtonian fluid."""
