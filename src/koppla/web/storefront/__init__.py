"""The storefront side: the tag a merchant pastes into a shop, and Koppla's demo shop."""
