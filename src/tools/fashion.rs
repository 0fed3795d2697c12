//! Fashion-MNIST for the examples: the full dataset from Debian's package,
//! or, in a quick run without it, the sample that ships in the repository.

use models::data::{DataError, FashionMnist};

/// The training and test splits. A quick run falls back to the
/// repository's 200 + 200-image sample when the package is not installed
/// (and says so); a full run needs the package and names it when missing.
pub fn fashion_mnist(quick: bool) -> Result<(FashionMnist, FashionMnist), DataError> {
    let load = |train| {
        if quick {
            FashionMnist::load_or_sample(FashionMnist::DEFAULT_DIR, train)
        } else {
            FashionMnist::load_default(train)
        }
    };
    let (train, test) = (load(true)?, load(false)?);
    if train.is_sample() {
        println!(
            "Fashion-MNIST is not installed: using the repository's sample (200 images per \
             split); `apt-get install dataset-fashion-mnist` for the full dataset"
        );
    }
    Ok((train, test))
}
